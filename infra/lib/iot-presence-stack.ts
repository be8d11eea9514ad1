import { type App, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { type PresenceConfig, readPresenceConfig } from './config';
import { DevicePolicy } from './device-policy';
import { DeviceThings } from './device-things';
import { PresenceFunctions } from './presence-functions';
import { PresenceMonitoring, lambdaId } from './presence-monitoring';
import { PresenceRules } from './presence-rules';

export interface IotPresenceStackProps extends StackProps {
  readonly config: PresenceConfig;
}

/**
 * The cloud side of architecture section 1, left to right: what a device may do on the broker, the rules
 * that route its signals, the functions behind them with their logs, and the alarms that watch them.
 *
 * Environment-agnostic on purpose: synthesis needs no account or lookups, and the emulator loads the
 * same template (rules and policy) that gets deployed.
 */
export class IotPresenceStack extends Stack {
  constructor(scope: Construct, id: string, props: IotPresenceStackProps) {
    super(scope, id, props);
    const { config } = props;

    // Raspberry Pi -> broker: the device policy, and the things known up front.
    const devicePolicy = new DevicePolicy(this, 'DevicePolicy', { policyName: config.devicePolicyName });
    if (config.thingNames.length > 0) {
      new DeviceThings(this, 'Things', { thingNames: config.thingNames });
    }

    // Rules engine -> Lambdas -> CloudWatch Logs / shadows. The functions come first because each rule
    // action points at one; the rules then wire them to the topics.
    const functions = new PresenceFunctions(this, 'Functions', { lambdaAssetsDir: config.lambdaAssetsDir });
    const rules = new PresenceRules(this, 'Rules', {
      disconnectRecorder: functions.disconnectRecorder,
      shadowReconciler: functions.shadowReconciler,
    });

    // Who is told when any of the above fails, and the dashboard an operator opens then.
    const monitoring = new PresenceMonitoring(this, 'Monitoring', {
      functions: functions.all,
      ruleErrorLogGroup: rules.errorLogGroup,
      alarmEmail: config.alarmEmail,
      disconnectStorm: config.disconnectStorm,
    });

    this.output('DevicePolicyName', devicePolicy.policyName, 'IoT policy to attach to each device certificate');
    this.output('DisconnectLogGroupName', functions.disconnectLogGroup.logGroupName, 'Disconnect records');
    this.output('RuleErrorLogGroupName', rules.errorLogGroup.logGroupName, 'IoT rule error action output');
    for (const [name, fn] of Object.entries(functions.all)) {
      const id = lambdaId(name);
      this.output(`${id}FunctionName`, fn.function.functionName, 'cargo lambda deploy target');
      this.output(`${id}FailedEventsQueueUrl`, fn.failedEventsQueue.queueUrl, `${name}: events that failed after Lambda async retries`);
      this.output(`${id}RedriveMappingId`, fn.redriveMappingId, `${name}: the disabled SQS event source mapping that replays them (make redrive)`);
    }
    this.output('AlarmTopicArn', monitoring.alarmTopic.topicArn, 'SNS topic of every alarm: subscribe to be told');
    this.output('DashboardName', monitoring.dashboard.dashboardName, 'CloudWatch dashboard of the presence system');
    for (const [name, rule] of Object.entries(rules.rules)) {
      this.output(`${name}RuleName`, rule.ref, `IoT topic rule ${name}`);
    }
  }

  private output(id: string, value: string, description: string): void {
    new CfnOutput(this, id, { value, description });
  }
}

/** The one stack of the app, configured from the app's context; shared by `bin/` and the tests. */
export function addIotPresenceStack(app: App): IotPresenceStack {
  return new IotPresenceStack(app, 'IotPresence', {
    description: 'iot-presence: device presence and shadow reconciliation on AWS IoT (functions, rules, device policy)',
    config: readPresenceConfig(app.node),
    // No env: the template is account/region-agnostic and synthesis never calls AWS.
    analyticsReporting: false,
  });
}
