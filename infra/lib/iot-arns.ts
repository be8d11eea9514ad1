import { Aws } from 'aws-cdk-lib';

/**
 * `arn:${Partition}:iot:${Region}:${Account}:<resource>` for the stack's own account and region.
 *
 * Built by concatenation (CDK emits `Fn::Join`), never `Fn::Sub`: IoT policy variables such as
 * `${iot:Connection.Thing.ThingName}` must reach AWS IoT verbatim, and `Fn::Sub` would try to
 * resolve them as CloudFormation parameters.
 */
export function iotArn(resource: string): string {
  return `arn:${Aws.PARTITION}:iot:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resource}`;
}

/** IoT policy variable for the thing name of the connection (reference 4.4: requires clientId = thing name). */
export const THING_NAME_VARIABLE = '${iot:Connection.Thing.ThingName}';
