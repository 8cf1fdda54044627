// Package poolpb holds the messages a caller exchanges with a pool actor
// (generated from proto/snakepit_pool.proto by scripts/gen-proto.sh). They are
// protobuf messages so that an actor on another node can use a pool through
// protoactor's remote: send Execute to the pool's PID and receive a Result, or
// a stream of Chunk messages ending with a final one.
package poolpb
