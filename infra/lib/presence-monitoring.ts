import {
  Aws,
  Duration,
  Fn,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as actions,
  aws_logs as logs,
  aws_sns as sns,
  aws_sns_subscriptions as subscriptions,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { DisconnectStormAlarm } from './config';
import type { RustFunction } from './rust-function';

/** The disconnect records' Embedded Metric Format namespace and metric (crates/iot-events, record.rs). */
export const EMF_NAMESPACE = 'IotPresence';
export const DISCONNECTS_METRIC = 'Disconnects';
/** What the rule-error metric filter counts: one per message an IoT rule failed to act on (reference 5.5). */
export const RULE_ERRORS_METRIC = 'RuleErrors';

/** Every alarm looks at five-minute windows: short enough to page in time, long enough to see a storm whole. */
const WINDOW = Duration.minutes(5);

export interface PresenceMonitoringProps {
  /** Each function with its failed-events queue, by function name. */
  readonly functions: Record<string, RustFunction>;
  readonly ruleErrorLogGroup: logs.ILogGroup;
  readonly alarmEmail?: string;
  readonly disconnectStorm: DisconnectStormAlarm;
}

/**
 * Who is told when the presence system fails, and where an operator looks: one SNS topic behind every alarm
 * (alarm and recovery), and one dashboard. Each alarm's description says what it means and what to do, so the
 * notification itself is the runbook (docs/deploy.md, "Operating it", says the same at more length).
 */
export class PresenceMonitoring extends Construct {
  readonly alarmTopic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: PresenceMonitoringProps) {
    super(scope, id);

    // Not KMS-encrypted: CloudWatch alarms cannot publish to a topic under the AWS-managed SNS key, and a
    // customer key would cost more than the alarm names it protects. Publishing requires TLS.
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'iot-presence alarms',
      enforceSSL: true,
    });
    if (props.alarmEmail !== undefined) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    const ruleErrors = new logs.MetricFilter(this, 'RuleErrorsFilter', {
      logGroup: props.ruleErrorLogGroup,
      filterPattern: logs.FilterPattern.allEvents(),
      metricNamespace: EMF_NAMESPACE,
      metricName: RULE_ERRORS_METRIC,
      metricValue: '1',
      unit: cloudwatch.Unit.COUNT,
    }).metric({ statistic: cloudwatch.Stats.SUM, period: WINDOW });

    this.alarm('RuleErrors', {
      metric: ruleErrors,
      threshold: 1,
      description:
        'An IoT rule could not deliver a message to its action (Lambda invoke refused, throttled or missing). ' +
        'What to do: read the newest events of the /iot/rule-errors log group (`aws logs tail /iot/rule-errors`): ' +
        'each names the rule, the action and the failure. Fix the cause (permission, function, quota); the messages ' +
        'in that log are not retried by IoT.',
    });

    const queueDepths: cloudwatch.IMetric[] = [];
    for (const [name, { function: fn, failedEventsQueue }] of Object.entries(props.functions)) {
      const logId = lambdaId(name);
      const queueDepth = failedEventsQueue.metricApproximateNumberOfMessagesVisible({
        statistic: cloudwatch.Stats.MAXIMUM,
        period: WINDOW,
      });
      queueDepths.push(queueDepth.with({ label: `${name} failed events (max)` }));
      this.alarm(`${logId}FailedEvents`, {
        metric: queueDepth,
        threshold: 1,
        description:
          `Events whose ${name} invocations failed after every async retry are waiting in its failed-events queue ` +
          `(output ${logId}FailedEventsQueueUrl; kept 14 days, then lost). What to do: read one (\`aws sqs ` +
          `receive-message --queue-url <${logId}FailedEventsQueueUrl> --visibility-timeout 0\`): responsePayload ` +
          `is the error, requestPayload the event. Fix the cause, then replay the queue: \`make redrive ` +
          `FUNCTIONS=${name}\` (docs/deploy.md, "Operating it").`,
      });
      this.alarm(`${logId}Errors`, {
        metric: fn.metricErrors({ statistic: cloudwatch.Stats.SUM, period: WINDOW }),
        threshold: 1,
        description:
          `${name} returned errors. Lambda retries each event twice, then sends it to the failed-events queue. ` +
          `What to do: read /aws/lambda/${name} for the error, fix it (or roll back with \`cargo lambda deploy\`), ` +
          `and watch the ${logId}FailedEvents alarm for what needs replaying.`,
      });
      this.alarm(`${logId}Throttles`, {
        metric: fn.metricThrottles({ statistic: cloudwatch.Stats.SUM, period: WINDOW }),
        threshold: 1,
        description:
          `${name} was throttled: the account's Lambda concurrency was used up (by this function or another). ` +
          'Throttled async events are retried for up to 6 hours, so nothing is lost yet. What to do: check the ' +
          "account's ConcurrentExecutions and raise the quota or reserve concurrency for this function.",
      });
    }

    this.disconnectStormAlarm(props.disconnectStorm);

    for (const alarm of this.alarms) {
      alarm.addAlarmAction(new actions.SnsAction(this.alarmTopic));
      alarm.addOkAction(new actions.SnsAction(this.alarmTopic));
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: Fn.join('-', ['IotPresence', Aws.REGION]),
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 4 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Disconnects by reason (per 5 minutes)',
        width: 12,
        left: [
          new cloudwatch.MathExpression({
            expression: `SEARCH('{${EMF_NAMESPACE},Reason} MetricName="${DISCONNECTS_METRIC}"', 'Sum', 300)`,
            label: '',
            period: WINDOW,
          }),
        ],
        stacked: true,
      }),
      new cloudwatch.GraphWidget({
        title: 'Rule errors and failed events',
        width: 12,
        left: [ruleErrors.with({ label: 'rule errors (sum)' })],
        right: queueDepths,
      }),
    );
    const functions = Object.entries(props.functions).map(([name, rust]) => [name, rust.function] as const);
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Invocations and errors',
        width: 12,
        left: functions.map(([name, fn]) => fn.metricInvocations({ label: `${name} invocations`, period: WINDOW })),
        right: functions.map(([name, fn]) => fn.metricErrors({ label: `${name} errors`, period: WINDOW })),
      }),
      new cloudwatch.GraphWidget({
        title: 'Duration (p50, p99)',
        width: 12,
        left: functions.flatMap(([name, fn]) => [
          fn.metricDuration({ label: `${name} p50`, statistic: cloudwatch.Stats.p(50), period: WINDOW }),
          fn.metricDuration({ label: `${name} p99`, statistic: cloudwatch.Stats.p(99), period: WINDOW }),
        ]),
      }),
    );
  }

  private alarm(id: string, props: { metric: cloudwatch.IMetric; threshold: number; description: string }): void {
    this.alarms.push(
      new cloudwatch.Alarm(this, id, {
        metric: props.metric,
        threshold: props.threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        // No data is the healthy state for every one of these metrics (no errors, an empty queue).
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: props.description,
      }),
    );
  }

  /** All reasons together: the recorder's EMF block also publishes `Disconnects` without dimensions. */
  private disconnectStormAlarm(storm: DisconnectStormAlarm): void {
    const disconnects = new cloudwatch.Metric({
      namespace: EMF_NAMESPACE,
      metricName: DISCONNECTS_METRIC,
      statistic: cloudwatch.Stats.SUM,
      period: WINDOW,
    });
    const description =
      'More devices disconnected than usual (a disconnect storm: a network or power cut at a site, a broker-side ' +
      'event, or a bad agent release). What to do: open the IotPresence dashboard and look at the reasons ' +
      '(CONNECTION_LOST or MQTT_KEEP_ALIVE_TIMEOUT: the network; SERVER_INITIATED_DISCONNECT: AWS; ' +
      'CLIENT_ERROR or AUTH_ERROR: the agent or its certificates), then at the records in /iot/device-disconnects.';
    if (storm.kind === 'threshold') {
      this.alarm('DisconnectStorm', {
        metric: disconnects,
        threshold: storm.disconnectsPer5Minutes,
        description: `${description} Threshold: ${storm.disconnectsPer5Minutes} disconnects in 5 minutes.`,
      });
      return;
    }
    this.alarms.push(
      new cloudwatch.AnomalyDetectionAlarm(this, 'DisconnectStorm', {
        metric: disconnects,
        stdDevs: storm.standardDeviations,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_UPPER_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `${description} Band: ${storm.standardDeviations} standard deviations above the expected.`,
      }),
    );
  }
}

/** `disconnect-recorder` -> `DisconnectRecorder`, for construct and output ids. */
export function lambdaId(functionName: string): string {
  return functionName
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}
