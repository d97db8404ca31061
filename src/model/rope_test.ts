import assert from "node:assert/strict";
import { ConfigReader } from "./config_fields.ts";
import { ModelConfigError } from "./errors.ts";
import { readRopeParameters, ropeInvFreq, type RopeParameters } from "./rope.ts";

/*
 * Reference values from transformers 5.23.0 / torch 2.15 (CPU, float32), computed with:
 *
 *   from transformers import LlamaConfig
 *   from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
 *   def ref(dim, rope):
 *       cfg = LlamaConfig(hidden_size=dim * 4, num_attention_heads=4, head_dim=dim,
 *                         max_position_embeddings=131072, rope_parameters=rope)
 *       return ROPE_INIT_FUNCTIONS[rope["rope_type"]](cfg, "cpu")[0].tolist()
 *   ref(128, {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
 *             "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})   # Llama 3.1
 *   ref(64, {... same with "factor": 32.0})                                          # Llama 3.2
 *   ref(16, {"rope_type": "linear", "rope_theta": 10000.0, "factor": 3.3})
 */
const LLAMA31 = [
  1.0,
  0.8146172165870667,
  0.663601279258728,
  0.5405809879302979,
  0.44036662578582764,
  0.3587302267551422,
  0.2922278344631195,
  0.2380538135766983,
  0.193922758102417,
  0.1579728126525879,
  0.12868738174438477,
  0.10483095049858093,
  0.08539710193872452,
  0.06956595182418823,
  0.05666961893439293,
  0.046164050698280334,
  0.03760603070259094,
  0.030634520575404167,
  0.02495540864765644,
  0.020329104736447334,
  0.016560440883040428,
  0.013490419834852219,
  0.010989529080688953,
  0.008952259086072445,
  0.00729266507551074,
  0.005940730683505535,
  0.00483942124992609,
  0.003942275885492563,
  0.0032114461064338684,
  0.0021665706299245358,
  0.0013718936825171113,
  0.0008567514596506953,
  0.0005248460220173001,
  0.0003126936499029398,
  0.0001785077911335975,
  9.556212171446532e-05,
  7.784655463183299e-05,
  6.341514381347224e-05,
  5.165906986803748e-05,
  4.208236714475788e-05,
  3.428102354519069e-05,
  2.7925909307668917e-05,
  2.2748929040972143e-05,
  1.8531669411459006e-05,
  1.5096217794052791e-05,
  1.2297638932068367e-05,
  1.0017868589784484e-05,
  8.160727702488657e-06,
  6.647869668086059e-06,
  5.415469331637723e-06,
  4.411534519022098e-06,
  3.593711880967021e-06,
  2.927499735960737e-06,
  2.3847917418606812e-06,
  1.9426925064180978e-06,
  1.5825507944100536e-06,
  1.289173155782919e-06,
  1.050182618200779e-06,
  8.554969213037111e-07,
  6.969025321268418e-07,
  5.677088097399974e-07,
  4.6246537976912805e-07,
  3.76732259610435e-07,
  3.068925877869333e-07,
]; // deno-fmt-ignore
const LLAMA32 = [1.0, 0.663601279258728, 0.44036662578582764, 0.2922278344631195, 0.193922758102417, 0.12868738174438477, 0.08539710193872452, 0.05666961893439293, 0.03760603070259094, 0.02495540864765644, 0.016560440883040428, 0.010989529080688953, 0.00729266507551074, 0.00483942124992609, 0.0032114461064338684, 0.0012905480107292533, 0.000429556705057621, 9.708286233944818e-05, 1.9461638657958247e-05, 1.291476746700937e-05, 8.570255886297673e-06, 5.687232260243036e-06, 3.7740544485131977e-06, 2.504467147446121e-06, 1.6619674170215148e-06, 1.1028836297555245e-06, 7.318749339901842e-07, 4.856731266045244e-07, 3.2229328894572973e-07, 2.1387423032592778e-07, 1.4192720243499934e-07, 9.418306490260875e-08]; // deno-fmt-ignore
const LINEAR = [0.3030303120613098, 0.09582659602165222, 0.03030303120613098, 0.009582660160958767, 0.0030303029343485832, 0.0009582660277374089, 0.00030303033418022096, 9.582660277374089e-05]; // deno-fmt-ignore

/** Distance in float32 units in the last place (both values positive). */
function ulps(a: number, b: number): number {
  const bits = (x: number) => new Int32Array(new Float32Array([x]).buffer)[0];
  return Math.abs(bits(a) - bits(b));
}

/**
 * Asserts every value is within 2 ULP of the reference and most are exact: torch's vectorised powf
 * (SLEEF, 1 ULP) rounds a few base frequencies differently from a correctly rounded pow.
 */
function assertMatches(actual: Float32Array, expected: number[]) {
  assert.equal(actual.length, expected.length);
  let exact = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = ulps(actual[i], expected[i]);
    assert.ok(d <= 2, `inv_freq[${i}] = ${actual[i]}, transformers has ${expected[i]} (${d} ULP apart)`);
    if (d === 0) exact++;
  }
  assert.ok(exact >= expected.length - 2, `only ${exact} of ${expected.length} values match exactly`);
}

const llama3 = (factor: number): RopeParameters => ({
  theta: 500000,
  attentionFactor: 1,
  scaling: {
    type: "llama3",
    factor,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  },
});

Deno.test("llama3 scaling matches transformers (Llama 3.1, head_dim 128)", () => {
  assertMatches(ropeInvFreq(128, llama3(8)), LLAMA31);
});

Deno.test("llama3 scaling matches transformers (Llama 3.2, head_dim 64, factor 32)", () => {
  assertMatches(ropeInvFreq(64, llama3(32)), LLAMA32);
});

Deno.test("linear scaling divides by the float32 factor as transformers does", () => {
  const inv = ropeInvFreq(16, { theta: 10000, attentionFactor: 1, scaling: { type: "linear", factor: 3.3 } });
  assertMatches(inv, LINEAR);
});

Deno.test("default frequencies are 1 / theta^(2i/d)", () => {
  const inv = ropeInvFreq(8, { theta: 10000, attentionFactor: 1, scaling: { type: "default" } });
  assert.deepEqual([...inv], [1, 0.1, 0.01, 0.001].map(Math.fround));
  assert.throws(() => ropeInvFreq(7, { theta: 1, attentionFactor: 1, scaling: { type: "default" } }), /even/);
});

const reader = (json: Record<string, unknown>) => new ConfigReader("/m/config.json", json);

Deno.test("reads transformers 5 rope_parameters with rope_theta inside", () => {
  const p = readRopeParameters(
    reader({
      rope_parameters: {
        rope_type: "llama3",
        rope_theta: 500000.0,
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
      },
    }),
    131072,
  );
  assert.deepEqual(p, llama3(8));
});

Deno.test("reads transformers 4 rope_scaling with a top-level rope_theta and the old 'type' key", () => {
  const p = readRopeParameters(
    reader({ rope_theta: 1e6, rope_scaling: { type: "linear", factor: 2 } }),
    4096,
  );
  assert.deepEqual(p, { theta: 1e6, attentionFactor: 1, scaling: { type: "linear", factor: 2 } });
});

Deno.test("rope_scaling wins over rope_parameters; theta defaults to 10000", () => {
  const p = readRopeParameters(
    reader({ rope_scaling: { rope_type: "linear", factor: 4 }, rope_parameters: { rope_type: "default" } }),
    4096,
  );
  assert.deepEqual(p.scaling, { type: "linear", factor: 4 });
  assert.equal(p.theta, 10000);
  assert.deepEqual(readRopeParameters(reader({ rope_scaling: null }), 10), {
    theta: 10000,
    attentionFactor: 1,
    scaling: { type: "default" },
  });
});

Deno.test("llama3 original_max_position_embeddings defaults to max_position_embeddings", () => {
  const p = readRopeParameters(
    reader({ rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4 } }),
    2048,
  );
  assert.equal(p.scaling.type === "llama3" && p.scaling.originalMaxPositionEmbeddings, 2048);
});

function rejects(json: Record<string, unknown>, ...parts: string[]) {
  assert.throws(() => readRopeParameters(reader(json), 4096), (e: unknown) => {
    assert.ok(e instanceof ModelConfigError, `expected ModelConfigError, got ${e}`);
    for (const p of ["/m/config.json", ...parts]) {
      assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    }
    return true;
  });
}

Deno.test("unsupported rope types are rejected, naming the type and listing the supported ones", () => {
  for (const type of ["dynamic", "yarn", "longrope"]) {
    rejects(
      { rope_scaling: { rope_type: type, factor: 4 } },
      "rope_scaling.rope_type",
      `"${type}"`,
      "supported rope types: default, linear, llama3",
    );
  }
  rejects({ rope_parameters: { type: "yarn", factor: 4 } }, "rope_parameters.type", '"yarn"');
});

Deno.test("missing or bad scaling parameters are rejected naming the key", () => {
  rejects({ rope_scaling: { rope_type: "linear" } }, "rope_scaling.factor is missing");
  rejects(
    { rope_scaling: { rope_type: "linear", factor: "2" } },
    "rope_scaling.factor must be a positive number",
  );
  rejects(
    { rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 4, high_freq_factor: 1 } },
    "high_freq_factor",
    "greater than low_freq_factor",
  );
  rejects({ rope_theta: -1 }, "rope_theta must be a positive number");
  rejects({ rope_scaling: "linear" }, "rope_scaling must be an object");
});

Deno.test("partial rotary factors and per-layer RoPE are rejected", () => {
  rejects({ partial_rotary_factor: 0.5 }, "partial_rotary_factor");
  rejects(
    { rope_parameters: { rope_type: "default", partial_rotary_factor: 0.25 } },
    "partial_rotary_factor",
  );
  rejects({ rope_parameters: { full_attention: { rope_type: "default" } } }, "per layer type");
  // A factor of exactly 1 is the ordinary case.
  readRopeParameters(reader({ partial_rotary_factor: 1 }), 10);
});
