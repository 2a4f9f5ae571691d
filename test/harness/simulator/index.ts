/** The provider simulator's entry points; see README.md in this folder. */
export { startSimulator, type Simulator, type SimulatorOptions } from './server.js';
export {
  createWebhookSender,
  PROVIDER_HABITS,
  type WebhookMessage,
  type WebhookSender,
  type WebhookSenderOptions,
} from './webhook-sender.js';
export { createWorld, type ChangeEvent, type Truth, type World, type WorldOptions } from './world.js';
