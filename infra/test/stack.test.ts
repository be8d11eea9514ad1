import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Token } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildStack, type Json, logicalIdOf, resolvePseudo, resourcesOfType } from './support';

const stack = buildStack();
const template = Template.fromStack(stack);
const resources = template.toJSON().Resources;

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: Json;
  NotAction?: Json;
  NotResource?: Json;
}

const asList = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

const statementsOf = (document: Json): Statement[] => (document as unknown as { Statement: Statement[] }).Statement;

/** Every statement of every IAM identity policy (standalone or inline) and IoT policy, with ARNs resolved. */
function allStatements(): Array<{ where: string; statement: Statement }> {
  const documents: Array<[string, Json]> = [
    ...resourcesOfType(template, 'AWS::IAM::Policy').map(([id, props]): [string, Json] => [id, props.PolicyDocument]),
    ...resourcesOfType(template, 'AWS::IAM::Role').flatMap(([id, props]) =>
      ((props.Policies ?? []) as Array<{ PolicyDocument: Json }>).map((policy): [string, Json] => [id, policy.PolicyDocument]),
    ),
    ...resourcesOfType(template, 'AWS::IoT::Policy').map(([id, props]): [string, Json] => [id, props.PolicyDocument]),
  ];
  return documents.flatMap(([where, document]) =>
    statementsOf(resolvePseudo(document)).map((statement) => ({ where, statement })),
  );
}

/** The only wildcard resources the contract allows (architecture section 3). */
const ALLOWED_WILDCARD_RESOURCES = [
  'arn:aws:iot:eu-west-1:123456789012:thing/*', // shadow-reconciler: shadows of any thing
  'arn:aws:iot:eu-west-1:123456789012:topic/data/${iot:Connection.Thing.ThingName}/*', // a device's own telemetry
];

describe('least privilege across the stack', () => {
  it('uses only Allow statements with Action and Resource (no NotAction, no NotResource)', () => {
    for (const { where, statement } of allStatements()) {
      assert.equal(statement.Effect, 'Allow', where);
      assert.equal(statement.NotAction, undefined, where);
      assert.equal(statement.NotResource, undefined, where);
    }
  });

  it('grants no wildcard action', () => {
    for (const { where, statement } of allStatements()) {
      for (const action of asList(statement.Action)) {
        assert.ok(!action.includes('*'), `${where}: ${action}`);
      }
    }
  });

  it('grants on no Resource "*" and no wildcard ARN beyond the contract', () => {
    for (const { where, statement } of allStatements()) {
      assert.ok(statement.Resource !== undefined, where);
      for (const resource of asList(statement.Resource as Json)) {
        if (typeof resource === 'string') {
          assert.notEqual(resource, '*', where);
          if (resource.includes('*')) {
            assert.ok(ALLOWED_WILDCARD_RESOURCES.includes(resource), `${where}: ${resource}`);
          }
        } else {
          // Anything unresolved must be a reference to one of this stack's own resources (log group, queue).
          const getAtt = (resource as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
          assert.ok(getAtt !== undefined && resources[getAtt[0]] !== undefined, `${where}: ${JSON.stringify(resource)}`);
        }
      }
    }
  });

  it('attaches no managed policies anywhere', () => {
    for (const [id, role] of resourcesOfType(template, 'AWS::IAM::Role')) {
      assert.equal(role.ManagedPolicyArns, undefined, id);
    }
  });
});

describe('stack', () => {
  it('is environment-agnostic, so synthesis needs no account or lookups', () => {
    assert.ok(Token.isUnresolved(stack.account));
    assert.ok(Token.isUnresolved(stack.region));
    assert.equal(template.toJSON().Resources.CDKMetadata, undefined);
  });

  it('outputs what a user needs after deploying', () => {
    const ref = (type: string, props: Record<string, unknown>) => ({ Ref: logicalIdOf(template, type, props) });
    const mappingOf = (functionName: string): { Ref: string } => {
      const mapping = resourcesOfType(template, 'AWS::Lambda::EventSourceMapping').find(
        ([, props]) => JSON.stringify(props.FunctionName) === JSON.stringify(ref('AWS::Lambda::Function', { FunctionName: functionName })),
      );
      assert.ok(mapping, functionName);
      return { Ref: mapping[0] };
    };
    const queueOf = (mapping: { Ref: string }) => ({
      Ref: (template.toJSON().Resources[mapping.Ref].Properties.EventSourceArn as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0],
    });
    const recorderMapping = mappingOf('disconnect-recorder');
    const reconcilerMapping = mappingOf('shadow-reconciler');
    const expected: Record<string, Json> = {
      DevicePolicyName: 'IotPresenceDevicePolicy',
      DisconnectLogGroupName: ref('AWS::Logs::LogGroup', { LogGroupName: '/iot/device-disconnects' }),
      RuleErrorLogGroupName: ref('AWS::Logs::LogGroup', { LogGroupName: '/iot/rule-errors' }),
      DisconnectRecorderFunctionName: ref('AWS::Lambda::Function', { FunctionName: 'disconnect-recorder' }),
      ShadowReconcilerFunctionName: ref('AWS::Lambda::Function', { FunctionName: 'shadow-reconciler' }),
      DisconnectRecorderFailedEventsQueueUrl: queueOf(recorderMapping),
      DisconnectRecorderRedriveMappingId: recorderMapping,
      ShadowReconcilerFailedEventsQueueUrl: queueOf(reconcilerMapping),
      ShadowReconcilerRedriveMappingId: reconcilerMapping,
      DisconnectWillRuleName: ref('AWS::IoT::TopicRule', { RuleName: 'DisconnectWill' }),
      PresenceEventsRuleName: ref('AWS::IoT::TopicRule', { RuleName: 'PresenceEvents' }),
      ShadowDocumentsRuleName: ref('AWS::IoT::TopicRule', { RuleName: 'ShadowDocuments' }),
      AlarmTopicArn: { Ref: Object.keys(template.findResources('AWS::SNS::Topic'))[0] },
      DashboardName: { Ref: Object.keys(template.findResources('AWS::CloudWatch::Dashboard'))[0] },
    };
    const outputs = template.toJSON().Outputs as Record<string, { Value: Json }>;
    assert.deepEqual(Object.keys(outputs).sort(), Object.keys(expected).sort());
    for (const [name, value] of Object.entries(expected)) {
      assert.deepEqual(outputs[name].Value, value, name);
    }
  });

  it('sets a retention on every log group', () => {
    const logGroups = resourcesOfType(template, 'AWS::Logs::LogGroup');
    assert.equal(logGroups.length, 4);
    for (const [id, props] of logGroups) {
      assert.equal(typeof props.RetentionInDays, 'number', id);
    }
  });
});
