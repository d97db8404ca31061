/* quant_avx512vnni.c — quant_avx512.c compiled with -mavx512vnni (VPDPBUSD / VPDPWSSD). */
#ifndef __AVX512VNNI__
#error "compile with -mavx512vnni"
#endif
#include "quant_avx512.c"
