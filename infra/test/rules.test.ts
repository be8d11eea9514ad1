import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Json, logicalIdOf, resolvePseudo, resourcesOfType, synthesize } from './support';

const template = synthesize();
const resources = template.toJSON().Resources;

const recorderId = logicalIdOf(template, 'AWS::Lambda::Function', { FunctionName: 'disconnect-recorder' });
const reconcilerId = logicalIdOf(template, 'AWS::Lambda::Function', { FunctionName: 'shadow-reconciler' });
const errorLogId = logicalIdOf(template, 'AWS::Logs::LogGroup', { LogGroupName: '/iot/rule-errors' });

/** Architecture section 3, verbatim: the emulator and AWS must run exactly these. */
const EXPECTED_RULES: Record<string, { sql: string; targets: string[] }> = {
  DisconnectWill: {
    sql: "SELECT *, topic(2) AS thing, clientid() AS clientId, timestamp() AS receivedAt FROM 'device/+/lwt'",
    targets: [recorderId],
  },
  PresenceEvents: {
    sql: "SELECT * FROM '$aws/events/presence/+/+'",
    targets: [recorderId, reconcilerId],
  },
  ShadowDocuments: {
    sql: "SELECT *, topic(3) AS thing FROM '$aws/things/+/shadow/update/documents'",
    targets: [reconcilerId],
  },
};

interface TopicRulePayload {
  Sql: string;
  AwsIotSqlVersion: string;
  RuleDisabled: boolean;
  Actions: Array<{ Lambda: { FunctionArn: { 'Fn::GetAtt': [string, string] } } }>;
  ErrorAction: Record<string, Json>;
}

function rule(name: string): { id: string; payload: TopicRulePayload; dependsOn: string[] } {
  const id = logicalIdOf(template, 'AWS::IoT::TopicRule', { RuleName: name });
  return { id, payload: resources[id].Properties.TopicRulePayload, dependsOn: resources[id].DependsOn ?? [] };
}

describe('presence rules', () => {
  it('defines exactly the three rules of the contract, with names IoT accepts', () => {
    const names = resourcesOfType(template, 'AWS::IoT::TopicRule').map(([, props]) => props.RuleName);
    assert.deepEqual(names.sort(), Object.keys(EXPECTED_RULES).sort());
    for (const name of names) {
      assert.match(name as string, /^[a-zA-Z0-9_]{1,128}$/);
    }
  });

  for (const [name, expected] of Object.entries(EXPECTED_RULES)) {
    it(`${name}: SQL verbatim, SQL version 2016-03-23, enabled`, () => {
      const { payload } = rule(name);
      assert.equal(payload.Sql, expected.sql);
      assert.equal(payload.AwsIotSqlVersion, '2016-03-23');
      assert.equal(payload.RuleDisabled, false);
    });

    it(`${name}: invokes exactly its functions`, () => {
      const targets = rule(name).payload.Actions.map((action) => {
        assert.deepEqual(Object.keys(action), ['Lambda']);
        assert.equal(action.Lambda.FunctionArn['Fn::GetAtt'][1], 'Arn');
        return action.Lambda.FunctionArn['Fn::GetAtt'][0];
      });
      assert.deepEqual(targets, expected.targets);
    });

    it(`${name}: error action writes to /iot/rule-errors with the error role`, () => {
      const { payload } = rule(name);
      const roleId = logicalIdOf(template, 'AWS::IAM::Role', {
        Description: 'IoT rule error action: write rule failures to /iot/rule-errors only',
      });
      assert.deepEqual(payload.ErrorAction, {
        CloudwatchLogs: {
          BatchMode: false,
          LogGroupName: { Ref: errorLogId },
          RoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] },
        },
      });
    });

    it(`${name}: each target allows invocation from this rule and account only, before the rule exists`, () => {
      const { id, dependsOn } = rule(name);
      for (const target of expected.targets) {
        const permissions = resourcesOfType(template, 'AWS::Lambda::Permission')
          .filter(([, props]) => JSON.stringify(props.FunctionName) === JSON.stringify({ 'Fn::GetAtt': [target, 'Arn'] }))
          .filter(([, props]) => resolvePseudo(props.SourceArn) === `arn:aws:iot:eu-west-1:123456789012:rule/${name}`);
        assert.equal(permissions.length, 1, `one permission for ${target} from rule ${name}`);
        const [permissionId, permission] = permissions[0];
        assert.equal(permission.Action, 'lambda:InvokeFunction');
        assert.equal(permission.Principal, 'iot.amazonaws.com');
        assert.deepEqual(permission.SourceAccount, { Ref: 'AWS::AccountId' });
        assert.ok(dependsOn.includes(permissionId), `rule ${id} must depend on ${permissionId}`);
      }
    });
  }

  it('has no invoke permission beyond the four rule/function pairs', () => {
    template.resourceCountIs('AWS::Lambda::Permission', 4);
    for (const [, permission] of resourcesOfType(template, 'AWS::Lambda::Permission')) {
      assert.ok(permission.SourceArn !== undefined && permission.SourceAccount !== undefined);
    }
  });

  it('keeps rule errors for a month', () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/iot/rule-errors', RetentionInDays: 30 });
  });

  it('lets the error role be assumed by IoT from this account only, and write only /iot/rule-errors', () => {
    const roleId = logicalIdOf(template, 'AWS::IAM::Role', {
      Description: 'IoT rule error action: write rule failures to /iot/rule-errors only',
    });
    assert.deepEqual(resources[roleId].Properties.AssumeRolePolicyDocument.Statement, [
      {
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
        Effect: 'Allow',
        Principal: { Service: 'iot.amazonaws.com' },
      },
    ]);
    assert.deepEqual(resources[roleId].Properties.Policies, [
      {
        PolicyName: 'RuleErrorLog',
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Action: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
              Effect: 'Allow',
              Resource: { 'Fn::GetAtt': [errorLogId, 'Arn'] },
            },
          ],
        },
      },
    ]);
    const attachedPolicies = resourcesOfType(template, 'AWS::IAM::Policy').filter(
      ([, props]) => JSON.stringify(props.Roles) === JSON.stringify([{ Ref: roleId }]),
    );
    assert.equal(attachedPolicies.length, 0);
  });
});
