import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Duration,
  RemovalPolicy,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_lambda_destinations as destinations,
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
  /** Where events go after the async retries are spent (reference 5.4: IoT invokes asynchronously). */
  readonly failedEventsQueue: sqs.IQueue;
}

export class LambdaAssetsMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LambdaAssetsMissingError';
  }
}

/**
 * One Rust Lambda built by cargo-lambda: `provided.al2023` on arm64, with its own log group (retention set),
 * its own role that can only write that log group (callers add their contract permissions), and an async
 * invoke config whose failures land in a queue. IoT's error action only covers failures to *invoke*
 * (reference 5.4); errors inside the function are retried by Lambda and then kept in the queue, never lost.
 */
export class RustFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

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
      onFailure: new destinations.SqsDestination(props.failedEventsQueue),
    });
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
