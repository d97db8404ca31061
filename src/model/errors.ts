/**
 * Errors raised while reading a model directory. They are distinct classes so the CLI can print the
 * message alone (no stack) for user mistakes, and so tests can tell a bad file from a bug.
 *
 * @module
 */

/** A weights file (safetensors, shard index) is malformed, truncated or lacks a tensor. */
export class ModelFormatError extends Error {
  /** Creates the error; `message` names the file and the tensor or key at fault. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ModelFormatError";
  }
}

/** config.json or generation_config.json is malformed, or describes a model hearth cannot run. */
export class ModelConfigError extends Error {
  /** Creates the error; `message` names the file and the key at fault. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ModelConfigError";
  }
}
