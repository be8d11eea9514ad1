import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { addIotPresenceStack } from '../lib/iot-presence-stack';
import { DISCONNECT_RECORDER, SHADOW_RECONCILER } from '../lib/presence-functions';

/** The feature flags of cdk.json, so the tests synthesize exactly what `cdk synth` does. */
const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'),
).context;

/** Temp dirs made by this test process, removed when it exits. */
const tempDirs: string[] = [];
process.on('exit', () => {
  for (const dir of tempDirs) {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A cargo-lambda output dir with placeholder `bootstrap` files for the named functions. */
export function fakeLambdaAssets(functions: string[] = [DISCONNECT_RECORDER, SHADOW_RECONCILER]): string {
  const dir = makeTempDir('iot-presence-lambda-');
  for (const name of functions) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, 'bootstrap'), '#!/bin/sh\n', { mode: 0o755 });
  }
  return dir;
}

/** Builds the app the way bin/iot-presence.ts does, with extra context, into a throwaway outdir. */
export function buildStack(context: Record<string, string> = {}) {
  const app = new App({
    outdir: makeTempDir('iot-presence-cdk-out-'),
    context: { ...CDK_JSON_CONTEXT, lambdaAssetsDir: fakeLambdaAssets(), ...context },
  });
  return addIotPresenceStack(app);
}

export function synthesize(context: Record<string, string> = {}): Template {
  return Template.fromStack(buildStack(context));
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Values for the pseudo parameters when reading a template the way CloudFormation would. */
export interface PseudoParameters {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
}

export const TEST_ENV: PseudoParameters = { partition: 'aws', region: 'eu-west-1', account: '123456789012' };

/**
 * Resolves `Fn::Join` over `Ref AWS::Partition/Region/AccountId` to plain strings, so assertions can compare
 * ARNs as AWS will see them. Any other intrinsic is left as it is.
 */
export function resolvePseudo(value: Json, env: PseudoParameters = TEST_ENV): Json {
  if (Array.isArray(value)) {
    return value.map((item) => resolvePseudo(item, env));
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === 'Ref') {
      const pseudo: Record<string, string> = {
        'AWS::Partition': env.partition,
        'AWS::Region': env.region,
        'AWS::AccountId': env.account,
      };
      const name = value.Ref as string;
      return pseudo[name] ?? value;
    }
    if (keys.length === 1 && keys[0] === 'Fn::Join') {
      const [separator, parts] = value['Fn::Join'] as [string, Json[]];
      const resolved = parts.map((part) => resolvePseudo(part, env));
      if (resolved.every((part) => typeof part === 'string')) {
        return resolved.join(separator);
      }
      return { 'Fn::Join': [separator, resolved] };
    }
    return Object.fromEntries(keys.map((key) => [key, resolvePseudo(value[key], env)]));
  }
  return value;
}

/** All resources of one type as `[logicalId, Properties]`. */
export function resourcesOfType(template: Template, type: string): Array<[string, Record<string, Json>]> {
  return Object.entries(template.findResources(type)).map(([id, resource]) => [id, resource.Properties ?? {}]);
}

/** The single resource of a type whose Properties contain the given key/value pair. */
export function logicalIdOf(template: Template, type: string, properties: Record<string, unknown>): string {
  const ids = Object.keys(template.findResources(type, { Properties: properties }));
  if (ids.length !== 1) {
    throw new Error(`expected one ${type} with ${JSON.stringify(properties)}, found ${ids.length}`);
  }
  return ids[0];
}
