// JSON <-> v3 messages for the HTTP/JSON gateway (pure: no HTTP here).
export { Base64Error, decodeStdBase64 } from './base64.js';
export { DecodeError, MessageDecoder, type Message } from './decode.js';
export { MessageEncoder } from './encode.js';
export { goJsonString } from './go-string.js';
export { JsonSyntaxError, parseWhole, readFirstValue, type FirstValue, type JsonValue } from './json-scan.js';
export { gatewayRoutes, type GatewayRoute } from './routes.js';
export { jsonNameOf, protoSchema, ProtoSchema, type FieldInfo, type FieldType, type MessageInfo, type MethodInfo } from './schema.js';
export { GatewayCodec, RequestStreamDecoder } from './codec.js';
