export { FleetBroker } from './fleet-broker.ts';
export type { BoundPorts, FleetBrokerOptions, ListenOptions } from './fleet-broker.ts';
export type { BrokerEvents, DeviceAuthenticator, DevicePacketInfo } from './types.ts';
export { CONNACK, checkConnect, checkPublish, checkSubscribe, mayForward } from './device-policy.ts';
export type { ConnectRefusal, ConnectRequest, PublishDecision, Refusal } from './device-policy.ts';
export { MQTT_WS_PATH } from './ws-listener.ts';
