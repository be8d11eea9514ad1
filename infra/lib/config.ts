import * as path from 'node:path';
import type { Node } from 'constructs';

/**
 * Everything the app takes from CDK context (`cdk synth -c key=value` or `cdk.json`).
 * Only names and paths: the stack is environment-agnostic, so synthesis needs no AWS account.
 */
export interface PresenceConfig {
  /** Absolute path of the `cargo lambda build` output; holds one `<function>/bootstrap` dir per function. */
  readonly lambdaAssetsDir: string;
  /** Name of the IoT policy attached to every device certificate. */
  readonly devicePolicyName: string;
  /** Things to register with the stack (certificates are created outside CloudFormation). */
  readonly thingNames: string[];
}

/** `make lambdas` writes here, relative to the repository root (the parent of `infra/`). */
export const DEFAULT_LAMBDA_ASSETS_DIR = '../target/lambda';
export const DEFAULT_DEVICE_POLICY_NAME = 'IotPresenceDevicePolicy';

/** Directory of `infra/`: relative context paths are resolved from here, not from the caller's cwd. */
const INFRA_DIR = path.resolve(__dirname, '..');

/** AWS IoT thing names: 1-128 chars of `[a-zA-Z0-9:_-]` (CreateThing API). */
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
/** AWS IoT policy names: 1-128 chars of `[\w+=,.@-]` (CreatePolicy API). */
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;

export class PresenceConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PresenceConfigError';
  }
}

/** Reads and validates the context values; a bad value fails synthesis instead of a deployment. */
export function readPresenceConfig(node: Node): PresenceConfig {
  const assetsDir = contextString(node, 'lambdaAssetsDir') ?? DEFAULT_LAMBDA_ASSETS_DIR;
  const devicePolicyName = contextString(node, 'devicePolicyName') ?? DEFAULT_DEVICE_POLICY_NAME;
  if (!POLICY_NAME.test(devicePolicyName)) {
    throw new PresenceConfigError(
      `context devicePolicyName "${devicePolicyName}" is not a valid IoT policy name ([\\w+=,.@-], 1-128 chars)`,
    );
  }
  const thingNames = parseThingNames(contextString(node, 'things') ?? '');
  return {
    lambdaAssetsDir: path.resolve(INFRA_DIR, assetsDir),
    devicePolicyName,
    thingNames,
  };
}

/** `things` is a comma-separated list; blanks are ignored, duplicates rejected (one CfnThing per name). */
export function parseThingNames(list: string): string[] {
  const names = list
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  for (const name of names) {
    if (!THING_NAME.test(name)) {
      throw new PresenceConfigError(`context things: "${name}" is not a valid thing name ([a-zA-Z0-9:_-], 1-128 chars)`);
    }
  }
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate !== undefined) {
    throw new PresenceConfigError(`context things: "${duplicate}" is listed twice`);
  }
  return names;
}

function contextString(node: Node, key: string): string | undefined {
  const value: unknown = node.tryGetContext(key);
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== 'string') {
    throw new PresenceConfigError(`context ${key} must be a string, got ${JSON.stringify(value)}`);
  }
  return value;
}
