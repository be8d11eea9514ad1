import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { PresenceConfigError, parseDisconnectStormAlarm } from '../lib/config';
import { buildStack, type Json, logicalIdOf, resourcesOfType, synthesize } from './support';

const template = synthesize();
const topicIds = Object.keys(template.findResources('AWS::SNS::Topic'));
const alarms = resourcesOfType(template, 'AWS::CloudWatch::Alarm');

/** The alarm that watches `metricName` (optionally with one dimension value), as [logicalId, Properties]. */
function alarmOn(metricName: string, dimension?: Json): Record<string, Json> {
  const found = alarms.filter(
    ([, props]) =>
      props.MetricName === metricName &&
      (dimension === undefined || JSON.stringify(props.Dimensions).includes(JSON.stringify(dimension))),
  );
  assert.equal(found.length, 1, `one alarm on ${metricName} ${JSON.stringify(dimension ?? '')}`);
  return found[0][1];
}

describe('monitoring', () => {
  it('has one SNS topic, TLS only, and no subscription unless an e-mail is given', () => {
    assert.equal(topicIds.length, 1);
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('subscribes the e-mail address from the context', () => {
    const withEmail = synthesize({ alarmEmail: 'ops@example.com' });
    withEmail.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    assert.throws(() => buildStack({ alarmEmail: 'not-an-address' }), PresenceConfigError);
  });

  it('notifies the topic on alarm and on recovery, and tells what to do, for every alarm', () => {
    assert.equal(alarms.length, 8);
    for (const [id, props] of alarms) {
      assert.deepEqual(props.AlarmActions, [{ Ref: topicIds[0] }], id);
      assert.deepEqual(props.OKActions, [{ Ref: topicIds[0] }], id);
      assert.match(String(props.AlarmDescription), /What to do: /, id);
    }
  });

  it('counts every event of /iot/rule-errors and alarms on the first one', () => {
    const errorLogId = logicalIdOf(template, 'AWS::Logs::LogGroup', { LogGroupName: '/iot/rule-errors' });
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: errorLogId },
      FilterPattern: '',
      MetricTransformations: [{ MetricNamespace: 'IotPresence', MetricName: 'RuleErrors', MetricValue: '1' }],
    });
    const alarm = alarmOn('RuleErrors');
    assert.equal(alarm.Threshold, 1);
    assert.equal(alarm.Statistic, 'Sum');
    assert.equal(alarm.TreatMissingData, 'notBreaching');
  });

  it('alarms as soon as a failed-events queue holds anything, and says how to redrive it', () => {
    const queues = Object.keys(template.findResources('AWS::SQS::Queue'));
    assert.equal(queues.length, 2);
    for (const queueId of queues) {
      const alarm = alarmOn('ApproximateNumberOfMessagesVisible', { Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } });
      assert.equal(alarm.Threshold, 1);
      assert.equal(alarm.Statistic, 'Maximum');
      assert.equal(alarm.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
      assert.match(String(alarm.AlarmDescription), /make redrive FUNCTIONS=(disconnect-recorder|shadow-reconciler)/);
    }
  });

  for (const name of ['disconnect-recorder', 'shadow-reconciler']) {
    it(`alarms on ${name}'s errors and throttles`, () => {
      const fnId = logicalIdOf(template, 'AWS::Lambda::Function', { FunctionName: name });
      for (const metric of ['Errors', 'Throttles']) {
        const alarm = alarmOn(metric, { Name: 'FunctionName', Value: { Ref: fnId } });
        assert.equal(alarm.Namespace, 'AWS/Lambda');
        assert.equal(alarm.Threshold, 1);
        assert.match(String(alarm.AlarmDescription), new RegExp(name));
      }
    });
  }

  it('alarms on a disconnect storm: 50 in 5 minutes by default, on the records\' EMF metric over all reasons', () => {
    const alarm = alarmOn('Disconnects');
    assert.equal(alarm.Namespace, 'IotPresence');
    assert.equal(alarm.Dimensions, undefined);
    assert.equal(alarm.Threshold, 50);
    assert.equal(alarm.Period, 300);
    const custom = resourcesOfType(synthesize({ disconnectStormAlarm: '500' }), 'AWS::CloudWatch::Alarm');
    assert.ok(custom.some(([, props]) => props.MetricName === 'Disconnects' && props.Threshold === 500));
  });

  it('can watch disconnects with an anomaly band instead', () => {
    const anomaly = synthesize({ disconnectStormAlarm: 'anomaly:4' });
    anomaly.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ComparisonOperator: 'GreaterThanUpperThreshold',
      ThresholdMetricId: Match.anyValue(),
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'ANOMALY_DETECTION_BAND(m0, 4)' }),
        Match.objectLike({ MetricStat: Match.objectLike({ Metric: { Namespace: 'IotPresence', MetricName: 'Disconnects' } }) }),
      ]),
    });
  });

  it('refuses a storm setting it cannot read', () => {
    for (const bad of ['0', '-3', 'lots', 'anomaly:0', 'anomaly:x', '1.5']) {
      assert.throws(() => parseDisconnectStormAlarm(bad), PresenceConfigError, bad);
    }
    assert.deepEqual(parseDisconnectStormAlarm('anomaly'), { kind: 'anomaly', standardDeviations: 3 });
    assert.deepEqual(parseDisconnectStormAlarm('20'), { kind: 'threshold', disconnectsPer5Minutes: 20 });
  });

  it('draws a dashboard of disconnects by reason, rule errors, the functions and the queue', () => {
    const [[, dashboard]] = resourcesOfType(template, 'AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(dashboard.DashboardBody);
    for (const text of [
      'Disconnects by reason',
      'SEARCH(',
      'RuleErrors',
      'ApproximateNumberOfMessagesVisible',
      'Invocations',
      'Duration',
      'p99',
      'alarm',
    ]) {
      assert.ok(body.includes(text), text);
    }
  });
});
