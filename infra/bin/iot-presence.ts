import { App } from 'aws-cdk-lib';
import { PresenceConfigError } from '../lib/config';
import { addIotPresenceStack } from '../lib/iot-presence-stack';
import { LambdaAssetsMissingError } from '../lib/rust-function';

const app = new App();
try {
  addIotPresenceStack(app);
} catch (error) {
  // Configuration mistakes get one readable line instead of a stack trace.
  if (error instanceof PresenceConfigError || error instanceof LambdaAssetsMissingError) {
    console.error(`error: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
app.synth();
