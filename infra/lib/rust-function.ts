import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Duration,
  RemovalPolicy,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_lambda_destinations as destinations,
  aws_lambda_event_sources as sources,
  aws_logs as logs,
  aws_sqs as sqs,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';

/** How long a function's own diagnostics are kept. */
export const FUNCTION_LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

export interface RustFunctionProps {
  /** Lambda function name; also the cargo package name, so `cargo lambda deploy <name>` updates it in place. */
  readonly functionName: string;
  readonly description: string;
  /** `cargo lambda build` output root; the code is `<lambdaAssetsDir>/<functionName>/bootstrap`. */
  readonly lambdaAssetsDir: string;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
}

/** How many failed-event records one redrive invocation replays: Lambda's SQS default batch. */
export const REDRIVE_BATCH_SIZE = 10;
/** At most this many redrive invocations at once (SQS event sources' minimum), so a replay cannot starve live events. */
export const REDRIVE_MAX_CONCURRENCY = 2;

export class LambdaAssetsMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LambdaAssetsMissingError';
  }
}

/**
 * One Rust Lambda built by cargo-lambda: `provided.al2023` on arm64, with its own log group (retention set),
 * its own role that can only write that log group (callers add their contract permissions), and an async
 * invoke config whose failures land in the function's own failed-events queue. IoT's error action only covers
 * failures to *invoke* (reference 5.4); errors inside the function are retried by Lambda and then kept in the
 * queue, never lost.
 *
 * The way back is the redrive mapping: an SQS event source from that queue onto the same function, created
 * disabled. `make redrive` enables it once the cause of the failures is fixed and disables it when the queue is
 * empty; the function unwraps each destination record's `requestPayload` and reports the records that fail
 * again as batch item failures, so they stay in the queue (crates/redrive). One queue per function, because a
 * mapping feeds one function and a filter would delete the other function's records.
 */
export class RustFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly failedEventsQueue: sqs.Queue;
  /** The disabled SQS event source mapping that replays `failedEventsQueue` (its UUID). */
  readonly redriveMappingId: string;

  constructor(scope: Construct, id: string, props: RustFunctionProps) {
    super(scope, id);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      logGroupName: `/aws/lambda/${props.functionName}`,
      retention: FUNCTION_LOG_RETENTION,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // Not AWSLambdaBasicExecutionRole: that managed policy allows logs:* actions on every log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.functionName}: its own logs plus the contract permissions of architecture section 3`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OwnLogGroup',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    // Lambda's SQS poller needs the visibility timeout to be at least the function's timeout (AWS recommends 6x),
    // or a record being replayed becomes visible again, and is replayed twice, while its invocation still runs.
    this.failedEventsQueue = new sqs.Queue(this, 'FailedEvents', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      retentionPeriod: Duration.days(14),
      visibilityTimeout: Duration.seconds(Math.max(30, 6 * props.timeout.toSeconds())),
    });

    this.function = new lambda.Function(this, 'Function', {
      functionName: props.functionName,
      description: props.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(bootstrapDir(props.lambdaAssetsDir, props.functionName)),
      memorySize: 128,
      timeout: props.timeout,
      environment: props.environment,
      role: this.role,
      logGroup: this.logGroup,
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(this.failedEventsQueue),
    });

    const redrive = new sources.SqsEventSource(this.failedEventsQueue, {
      enabled: false,
      batchSize: REDRIVE_BATCH_SIZE,
      maxConcurrency: REDRIVE_MAX_CONCURRENCY,
      reportBatchItemFailures: true,
    });
    this.function.addEventSource(redrive);
    this.redriveMappingId = redrive.eventSourceMappingId;
  }
}

/** The cargo-lambda output directory of one function; synthesis stops here if `make lambdas` has not run. */
function bootstrapDir(lambdaAssetsDir: string, functionName: string): string {
  const dir = path.join(lambdaAssetsDir, functionName);
  const bootstrap = path.join(dir, 'bootstrap');
  if (!fs.existsSync(bootstrap)) {
    throw new LambdaAssetsMissingError(
      `Lambda code for ${functionName} not found: ${bootstrap} does not exist. ` +
        'Run `make lambdas` (cargo lambda build --release --arm64) from the repository root first, ' +
        'or point the context value lambdaAssetsDir at the cargo-lambda output directory.',
    );
  }
  return dir;
}
