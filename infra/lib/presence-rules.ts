import { Aws, RemovalPolicy, aws_iam as iam, aws_iot as iot, aws_lambda as lambda, aws_logs as logs } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { iotArn } from './iot-arns';

/** Where every rule's error action writes (reference 5.5: one message per rule per failed incoming message). */
export const RULE_ERROR_LOG_GROUP_NAME = '/iot/rule-errors';

/** Reference 5.1: without it a rule gets 2015-10-08; 2016-03-23 is the recommended version. */
export const IOT_SQL_VERSION = '2016-03-23';

/** The rules of architecture section 3, SQL verbatim. Rule names allow `[a-zA-Z0-9_]` only (reference 5.1). */
export const RULE_SQL = {
  DisconnectWill: "SELECT *, topic(2) AS thing, clientid() AS clientId, timestamp() AS receivedAt FROM 'device/+/lwt'",
  PresenceEvents: "SELECT * FROM '$aws/events/presence/+/+'",
  ShadowDocuments: "SELECT *, topic(3) AS thing FROM '$aws/things/+/shadow/update/documents'",
} as const;

export type PresenceRuleName = keyof typeof RULE_SQL;

export interface PresenceRulesProps {
  readonly disconnectRecorder: lambda.IFunction;
  readonly shadowReconciler: lambda.IFunction;
}

/** A rule's Lambda action target; `id` names its invoke permission in the template. */
interface RuleTarget {
  readonly id: string;
  readonly function: lambda.IFunction;
}

/**
 * The rules engine side: three topic rules that invoke the presence functions, and the shared error log.
 *
 * Each function gets one invoke permission per rule, scoped with the rule ARN and the account (reference 5.4:
 * without them any account's rule could invoke it). A rule is created only after its permissions, so it never
 * fires into a function it may not call yet.
 */
export class PresenceRules extends Construct {
  readonly errorLogGroup: logs.LogGroup;
  readonly errorActionRole: iam.Role;
  readonly rules: Record<PresenceRuleName, iot.CfnTopicRule>;

  constructor(scope: Construct, id: string, props: PresenceRulesProps) {
    super(scope, id);

    this.errorLogGroup = new logs.LogGroup(this, 'ErrorLogGroup', {
      logGroupName: RULE_ERROR_LOG_GROUP_NAME,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // Reference 5.6: the CloudWatch Logs action needs these three actions; only on the error log group.
    // Inline, so the policy exists as soon as the role does and no rule can fire before it.
    this.errorActionRole = new iam.Role(this, 'ErrorActionRole', {
      assumedBy: new iam.ServicePrincipal('iot.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'IoT rule error action: write rule failures to /iot/rule-errors only',
      inlinePolicies: {
        RuleErrorLog: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
              resources: [this.errorLogGroup.logGroupArn],
            }),
          ],
        }),
      },
    });

    const recorder: RuleTarget = { id: 'DisconnectRecorder', function: props.disconnectRecorder };
    const reconciler: RuleTarget = { id: 'ShadowReconciler', function: props.shadowReconciler };
    this.rules = {
      DisconnectWill: this.rule('DisconnectWill', 'Last Will messages -> disconnect-recorder', [recorder]),
      PresenceEvents: this.rule(
        'PresenceEvents',
        'Lifecycle events -> disconnect-recorder (disconnect records) and shadow-reconciler (connectivity shadow)',
        [recorder, reconciler],
      ),
      ShadowDocuments: this.rule('ShadowDocuments', 'Classic shadow documents -> shadow-reconciler (desired hygiene)', [
        reconciler,
      ]),
    };
  }

  private rule(ruleName: PresenceRuleName, description: string, targets: RuleTarget[]): iot.CfnTopicRule {
    const rule = new iot.CfnTopicRule(this, ruleName, {
      ruleName,
      topicRulePayload: {
        sql: RULE_SQL[ruleName],
        awsIotSqlVersion: IOT_SQL_VERSION,
        description,
        ruleDisabled: false,
        actions: targets.map((target) => ({ lambda: { functionArn: target.function.functionArn } })),
        errorAction: {
          cloudwatchLogs: {
            logGroupName: this.errorLogGroup.logGroupName,
            roleArn: this.errorActionRole.roleArn,
            batchMode: false,
          },
        },
      },
    });
    for (const target of targets) {
      const permission = new lambda.CfnPermission(this, `${ruleName}Invokes${target.id}`, {
        action: 'lambda:InvokeFunction',
        functionName: target.function.functionArn,
        principal: 'iot.amazonaws.com',
        sourceArn: iotArn(`rule/${ruleName}`),
        sourceAccount: Aws.ACCOUNT_ID,
      });
      rule.addResourceDependency(permission);
    }
    return rule;
  }
}
