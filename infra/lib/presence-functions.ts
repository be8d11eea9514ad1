import { Duration, RemovalPolicy, aws_iam as iam, aws_lambda as lambda, aws_logs as logs } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { iotArn } from './iot-arns';
import { RustFunction } from './rust-function';

/** Where disconnect-recorder writes one record per disconnect signal, stream = thing name (architecture section 3). */
export const DISCONNECT_LOG_GROUP_NAME = '/iot/device-disconnects';
/** The cloud-owned named shadow that shadow-reconciler maintains (architecture section 3). */
export const CONNECTIVITY_SHADOW_NAME = 'connectivity';

export const DISCONNECT_RECORDER = 'disconnect-recorder';
export const SHADOW_RECONCILER = 'shadow-reconciler';

export interface PresenceFunctionsProps {
  readonly lambdaAssetsDir: string;
}

/**
 * The two Rust Lambdas and what they write to: the disconnect records log group, and for each function the
 * queue that keeps events whose invocations failed after Lambda's async retries, with its redrive mapping.
 */
export class PresenceFunctions extends Construct {
  readonly disconnectRecorder: lambda.Function;
  readonly shadowReconciler: lambda.Function;
  readonly disconnectLogGroup: logs.LogGroup;
  /** Each function with its failed-events queue and redrive mapping, by function name. */
  readonly all: Record<string, RustFunction>;

  constructor(scope: Construct, id: string, props: PresenceFunctionsProps) {
    super(scope, id);

    // Disconnect records are the product, not diagnostics: kept a year and retained if the stack is deleted.
    this.disconnectLogGroup = new logs.LogGroup(this, 'DisconnectLogGroup', {
      logGroupName: DISCONNECT_LOG_GROUP_NAME,
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const recorder = new RustFunction(this, 'DisconnectRecorder', {
      functionName: DISCONNECT_RECORDER,
      description: 'Last Will + lifecycle events -> disconnect records in CloudWatch Logs',
      lambdaAssetsDir: props.lambdaAssetsDir,
      timeout: Duration.seconds(10),
      environment: { DISCONNECT_LOG_GROUP: DISCONNECT_LOG_GROUP_NAME },
    });
    // Contract: logs:CreateLogStream/PutLogEvents on its log group only. The group ARN ends in `:*`,
    // which covers the group's streams (`...:log-group:<name>:log-stream:<thing>`) and nothing else.
    recorder.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DisconnectRecords',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.disconnectLogGroup.logGroupArn],
      }),
    );
    this.disconnectRecorder = recorder.function;

    const reconciler = new RustFunction(this, 'ShadowReconciler', {
      functionName: SHADOW_RECONCILER,
      description: 'Lifecycle events -> connectivity shadow; shadow documents -> desired hygiene',
      lambdaAssetsDir: props.lambdaAssetsDir,
      // Each event may re-read and retry a shadow update after a version conflict (409).
      timeout: Duration.seconds(30),
      environment: { CONNECTIVITY_SHADOW_NAME },
    });
    // Contract: shadow reads and writes on things only (classic and named shadows share the thing ARN).
    reconciler.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ThingShadows',
        actions: ['iot:GetThingShadow', 'iot:UpdateThingShadow'],
        resources: [iotArn('thing/*')],
      }),
    );
    this.shadowReconciler = reconciler.function;
    this.all = { [DISCONNECT_RECORDER]: recorder, [SHADOW_RECONCILER]: reconciler };
  }
}
