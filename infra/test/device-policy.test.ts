import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PresenceConfigError } from '../lib/config';
import { buildStack, type Json, type PseudoParameters, resolvePseudo, resourcesOfType, synthesize } from './support';

const template = synthesize();

const ARN = 'arn:aws:iot:eu-west-1:123456789012';
const THING = '${iot:Connection.Thing.ThingName}';

/** Architecture section 3 "Device policy", written out by hand: the test must not reuse the code's lists. */
const EXPECTED_STATEMENTS = [
  {
    Effect: 'Allow',
    Action: 'iot:Connect',
    Resource: `${ARN}:client/${THING}`,
    Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
  },
  {
    Effect: 'Allow',
    Action: 'iot:Publish',
    Resource: [
      `${ARN}:topic/data/${THING}/*`,
      `${ARN}:topic/device/${THING}/lwt`,
      `${ARN}:topic/$aws/things/${THING}/shadow/get`,
      `${ARN}:topic/$aws/things/${THING}/shadow/update`,
    ],
  },
  {
    Effect: 'Allow',
    Action: ['iot:Subscribe', 'iot:Receive'],
    Resource: [
      `${ARN}:topicfilter/$aws/things/${THING}/shadow/get/accepted`,
      `${ARN}:topicfilter/$aws/things/${THING}/shadow/get/rejected`,
      `${ARN}:topicfilter/$aws/things/${THING}/shadow/update/accepted`,
      `${ARN}:topicfilter/$aws/things/${THING}/shadow/update/rejected`,
      `${ARN}:topicfilter/$aws/things/${THING}/shadow/update/delta`,
      `${ARN}:topic/$aws/things/${THING}/shadow/get/accepted`,
      `${ARN}:topic/$aws/things/${THING}/shadow/get/rejected`,
      `${ARN}:topic/$aws/things/${THING}/shadow/update/accepted`,
      `${ARN}:topic/$aws/things/${THING}/shadow/update/rejected`,
      `${ARN}:topic/$aws/things/${THING}/shadow/update/delta`,
    ],
  },
];

function policies(): Array<Record<string, Json>> {
  return resourcesOfType(template, 'AWS::IoT::Policy').map(([, props]) => props);
}

function policyDocument(): Json {
  return policies()[0].PolicyDocument;
}

/** Reference 4.1 / CreatePolicy: at most 2048 characters, whitespace excluded. */
function documentLength(env: PseudoParameters): number {
  return JSON.stringify(resolvePseudo(policyDocument(), env)).replace(/\s/g, '').length;
}

describe('device policy', () => {
  it('is one IoT policy named IotPresenceDevicePolicy by default', () => {
    assert.equal(policies().length, 1);
    assert.equal(policies()[0].PolicyName, 'IotPresenceDevicePolicy');
  });

  it('grants exactly the statements of the contract', () => {
    assert.deepEqual(resolvePseudo(policyDocument()), { Version: '2012-10-17', Statement: EXPECTED_STATEMENTS });
  });

  it('keeps the thing-name policy variable literal (Fn::Join, never Fn::Sub)', () => {
    const raw = JSON.stringify(policyDocument());
    assert.ok(!raw.includes('Fn::Sub'));
    assert.equal(raw.split(THING).length - 1, 15);
  });

  it('fits the 2048-character limit in every partition, with the longest region names', () => {
    const longest = [
      { partition: 'aws', region: 'ap-southeast-5', account: '123456789012' },
      { partition: 'aws-cn', region: 'cn-northwest-1', account: '123456789012' },
      { partition: 'aws-us-gov', region: 'us-gov-west-1', account: '123456789012' },
    ];
    for (const env of longest) {
      assert.ok(documentLength(env) <= 2048, `${env.region}: ${documentLength(env)} chars`);
    }
  });

  it('takes its name from the devicePolicyName context value', () => {
    const custom = synthesize({ devicePolicyName: 'FactoryDevicePolicy' });
    custom.hasResourceProperties('AWS::IoT::Policy', { PolicyName: 'FactoryDevicePolicy' });
    custom.hasOutput('DevicePolicyName', { Value: 'FactoryDevicePolicy' });
  });

  it('rejects a policy name IoT would refuse', () => {
    assert.throws(() => buildStack({ devicePolicyName: 'no spaces allowed' }), PresenceConfigError);
  });
});

describe('device things', () => {
  it('registers no things unless asked', () => {
    template.resourceCountIs('AWS::IoT::Thing', 0);
  });

  it('registers one thing per name in the things context value, and nothing else for devices', () => {
    const withThings = synthesize({ things: 'ratchet, clank ,,' });
    assert.deepEqual(
      resourcesOfType(withThings, 'AWS::IoT::Thing').map(([, props]) => props),
      [{ ThingName: 'ratchet' }, { ThingName: 'clank' }],
    );
    for (const type of ['AWS::IoT::Certificate', 'AWS::IoT::PolicyPrincipalAttachment', 'AWS::IoT::ThingPrincipalAttachment']) {
      withThings.resourceCountIs(type, 0);
    }
  });

  it('rejects invalid or repeated thing names', () => {
    assert.throws(() => buildStack({ things: 'ratchet,bad/name' }), PresenceConfigError);
    assert.throws(() => buildStack({ things: 'ratchet,ratchet' }), PresenceConfigError);
  });
});
