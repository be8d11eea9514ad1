import { aws_iot as iot } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { iotArn, THING_NAME_VARIABLE as THING } from './iot-arns';

export interface DevicePolicyProps {
  readonly policyName: string;
}

/**
 * Topics a device publishes to, each scoped to the device's own thing name (architecture section 3).
 * The `connectivity` named shadow is absent on purpose: it is cloud-owned, written only by shadow-reconciler.
 */
export const DEVICE_PUBLISH_TOPICS = [
  `data/${THING}/*`,
  `device/${THING}/lwt`,
  `$aws/things/${THING}/shadow/get`,
  `$aws/things/${THING}/shadow/update`,
];

/** Classic shadow responses a device subscribes to; the same names are granted for Receive (reference 4.2). */
export const DEVICE_SUBSCRIBE_TOPICS = [
  `$aws/things/${THING}/shadow/get/accepted`,
  `$aws/things/${THING}/shadow/get/rejected`,
  `$aws/things/${THING}/shadow/update/accepted`,
  `$aws/things/${THING}/shadow/update/rejected`,
  `$aws/things/${THING}/shadow/update/delta`,
];

/**
 * The least-privilege IoT policy attached to every device certificate (architecture section 3, reference 4).
 *
 * - Connect only as the thing the certificate is attached to (clientId = thing name, reference 4.4), so one
 *   device's certificate can't impersonate another.
 * - Subscribe is checked against the literal filter on `topicfilter/`, Receive on `topic/` for every delivery
 *   (reference 4.2), so both are granted, for the same five shadow response topics and nothing else (one
 *   statement: each action only ever matches its own resource type).
 * - Shadow access over MQTT is plain topic access; the `iot:*ThingShadow` actions are HTTP-only and not granted.
 * - MQTT `+`/`#` are literal in policies (reference 4.3); the only wildcard is `data/<thing>/*`, which `*` keeps
 *   inside the device's own prefix.
 */
export class DevicePolicy extends Construct {
  readonly policyName: string;
  readonly policy: iot.CfnPolicy;

  constructor(scope: Construct, id: string, props: DevicePolicyProps) {
    super(scope, id);
    this.policyName = props.policyName;
    this.policy = new iot.CfnPolicy(this, 'Resource', {
      policyName: props.policyName,
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'iot:Connect',
            Resource: iotArn(`client/${THING}`),
            Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
          },
          {
            Effect: 'Allow',
            Action: 'iot:Publish',
            Resource: DEVICE_PUBLISH_TOPICS.map((topic) => iotArn(`topic/${topic}`)),
          },
          {
            // One statement for both: Subscribe requests only ever name `topicfilter/` resources and Receive
            // only `topic/` ones, so neither action gains anything from the other's list. Two statements
            // would cost ~40 characters that the GovCloud ARNs need (2,048-character limit, reference 4.1).
            Effect: 'Allow',
            Action: ['iot:Subscribe', 'iot:Receive'],
            Resource: [
              ...DEVICE_SUBSCRIBE_TOPICS.map((topic) => iotArn(`topicfilter/${topic}`)),
              ...DEVICE_SUBSCRIBE_TOPICS.map((topic) => iotArn(`topic/${topic}`)),
            ],
          },
        ],
      },
    });
  }
}
