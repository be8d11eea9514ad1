import { aws_iot as iot } from 'aws-cdk-lib';
import { Construct } from 'constructs';

export interface DeviceThingsProps {
  readonly thingNames: string[];
}

/**
 * Registry entries for known devices. Only the things: certificates hold private keys, so they are
 * created outside CloudFormation (`aws iot create-keys-and-certificate`) and attached with
 * `attach-thing-principal`, which is what makes `iot:Connection.Thing.IsAttached` true (reference 4.4).
 */
export class DeviceThings extends Construct {
  readonly things: iot.CfnThing[];

  constructor(scope: Construct, id: string, props: DeviceThingsProps) {
    super(scope, id);
    this.things = props.thingNames.map((thingName) => new iot.CfnThing(this, thingName, { thingName }));
  }
}
