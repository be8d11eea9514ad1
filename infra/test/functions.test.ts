import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { LambdaAssetsMissingError } from '../lib/rust-function';
import { buildStack, fakeLambdaAssets, type Json, logicalIdOf, resolvePseudo, resourcesOfType, synthesize } from './support';

const template = synthesize();

const recorderId = logicalIdOf(template, 'AWS::Lambda::Function', { FunctionName: 'disconnect-recorder' });
const reconcilerId = logicalIdOf(template, 'AWS::Lambda::Function', { FunctionName: 'shadow-reconciler' });

/** The failed-events queue of a function: the on-failure destination of its async invoke config. */
function queueOf(functionId: string): string {
  const config = resourcesOfType(template, 'AWS::Lambda::EventInvokeConfig').find(
    ([, props]) => JSON.stringify(props.FunctionName) === JSON.stringify({ Ref: functionId }),
  );
  assert.ok(config, functionId);
  const destination = (config[1].DestinationConfig as { OnFailure: { Destination: { 'Fn::GetAtt': [string, string] } } })
    .OnFailure.Destination;
  return destination['Fn::GetAtt'][0];
}
const disconnectLogId = logicalIdOf(template, 'AWS::Logs::LogGroup', { LogGroupName: '/iot/device-disconnects' });

function functionProps(id: string): Record<string, Json> {
  return template.toJSON().Resources[id].Properties;
}

/** The statements of every IAM policy attached to the role a function runs as. */
function roleStatements(functionId: string): Json[] {
  const role = functionProps(functionId).Role as { 'Fn::GetAtt': [string, string] };
  const roleId = role['Fn::GetAtt'][0];
  return resourcesOfType(template, 'AWS::IAM::Policy')
    .filter(([, props]) => JSON.stringify(props.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap(([, props]) => (props.PolicyDocument as { Statement: Json[] }).Statement);
}

describe('presence functions', () => {
  it('defines exactly the two Rust functions', () => {
    template.resourceCountIs('AWS::Lambda::Function', 2);
  });

  for (const name of ['disconnect-recorder', 'shadow-reconciler']) {
    it(`${name} runs the cargo-lambda bootstrap on provided.al2023 / arm64 with 128 MB`, () => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: name,
        Runtime: 'provided.al2023',
        Architectures: ['arm64'],
        Handler: 'bootstrap',
        MemorySize: 128,
      });
    });

    it(`${name} logs to its own log group with a retention`, () => {
      const logGroupId = logicalIdOf(template, 'AWS::Logs::LogGroup', { LogGroupName: `/aws/lambda/${name}` });
      template.hasResourceProperties('AWS::Logs::LogGroup', {
        LogGroupName: `/aws/lambda/${name}`,
        RetentionInDays: 30,
      });
      template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: name,
        LoggingConfig: { LogGroup: { Ref: logGroupId } },
      });
    });
  }

  it('gives each function a timeout that covers its work', () => {
    assert.equal(functionProps(recorderId).Timeout, 10);
    assert.equal(functionProps(reconcilerId).Timeout, 30);
  });

  it('passes the contract names through the environment', () => {
    assert.deepEqual(functionProps(recorderId).Environment, {
      Variables: { DISCONNECT_LOG_GROUP: '/iot/device-disconnects' },
    });
    assert.deepEqual(functionProps(reconcilerId).Environment, {
      Variables: { CONNECTIVITY_SHADOW_NAME: 'connectivity' },
    });
  });

  it('retries async invocations twice, then sends the event to its own failed-events queue', () => {
    for (const id of [recorderId, reconcilerId]) {
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: id },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: 6 * 3600,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueOf(id), 'Arn'] } } },
      });
    }
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 2);
    assert.notEqual(queueOf(recorderId), queueOf(reconcilerId), 'a redrive mapping feeds one function');
  });

  it('keeps failed events encrypted for 14 days, hidden while a replay runs (6x the function timeout)', () => {
    template.resourceCountIs('AWS::SQS::Queue', 2);
    for (const [id, timeout] of [[recorderId, 10], [reconcilerId, 30]] as const) {
      assert.deepEqual(template.toJSON().Resources[queueOf(id)].Properties, {
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 14 * 24 * 3600,
        VisibilityTimeout: 6 * timeout,
      });
      assert.equal(functionProps(id).Timeout, timeout);
    }
  });

  it('replays each queue into its function through a disabled mapping that reports batch item failures', () => {
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    for (const id of [recorderId, reconcilerId]) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: id },
        EventSourceArn: { 'Fn::GetAtt': [queueOf(id), 'Arn'] },
        Enabled: false,
        BatchSize: 10,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: 2 },
      });
    }
  });

  it('keeps disconnect records for a year, even if the stack is deleted', () => {
    template.hasResource('AWS::Logs::LogGroup', {
      Properties: { LogGroupName: '/iot/device-disconnects', RetentionInDays: 365 },
      DeletionPolicy: 'Retain',
    });
  });

  it('lets disconnect-recorder write only its own logs, the disconnect records and its queue', () => {
    const ownLogId = logicalIdOf(template, 'AWS::Logs::LogGroup', { LogGroupName: '/aws/lambda/disconnect-recorder' });
    assert.deepEqual(new Set(roleStatements(recorderId).map((statement) => JSON.stringify(statement))), new Set([
      JSON.stringify({
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [ownLogId, 'Arn'] },
        Sid: 'OwnLogGroup',
      }),
      JSON.stringify({
        // Its own queue only: send (on-failure destination) and consume (redrive mapping).
        Action: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl',
          'sqs:ReceiveMessage', 'sqs:SendMessage'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [queueOf(recorderId), 'Arn'] },
      }),
      JSON.stringify({
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [disconnectLogId, 'Arn'] },
        Sid: 'DisconnectRecords',
      }),
    ]));
  });

  it('lets shadow-reconciler read and update thing shadows only, besides its logs and its queue', () => {
    const ownLogId = logicalIdOf(template, 'AWS::Logs::LogGroup', { LogGroupName: '/aws/lambda/shadow-reconciler' });
    const statements = roleStatements(reconcilerId).map((statement) => JSON.stringify(resolvePseudo(statement)));
    assert.deepEqual(new Set(statements), new Set([
      JSON.stringify({
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [ownLogId, 'Arn'] },
        Sid: 'OwnLogGroup',
      }),
      JSON.stringify({
        // Its own queue only: send (on-failure destination) and consume (redrive mapping).
        Action: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl',
          'sqs:ReceiveMessage', 'sqs:SendMessage'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [queueOf(reconcilerId), 'Arn'] },
      }),
      JSON.stringify({
        Action: ['iot:GetThingShadow', 'iot:UpdateThingShadow'],
        Effect: 'Allow',
        Resource: 'arn:aws:iot:eu-west-1:123456789012:thing/*',
        Sid: 'ThingShadows',
      }),
    ]));
  });

  it('gives function roles no managed policies (AWSLambdaBasicExecutionRole allows every log group)', () => {
    for (const [, role] of resourcesOfType(template, 'AWS::IAM::Role')) {
      assert.equal(role.ManagedPolicyArns, undefined);
    }
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })],
      },
    });
  });

  it('fails synthesis with a pointer to `make lambdas` when a function was not built', () => {
    const onlyRecorder = fakeLambdaAssets(['disconnect-recorder']);
    assert.throws(
      () => buildStack({ lambdaAssetsDir: onlyRecorder }),
      (error: unknown) =>
        error instanceof LambdaAssetsMissingError &&
        error.message.includes('shadow-reconciler') &&
        error.message.includes('make lambdas'),
    );
  });
});
