// Package framewire holds the protobuf field numbers of the Subscribe
// frames that are written or read by hand rather than through generated
// code: the server assembles events frames from the events' shared
// encodings (internal/server), and the load generator scans frames without
// unmarshalling them (internal/loadgen). Both take the numbers from here;
// framewire_test.go checks each against the generated descriptors of
// proto/honeydo/realtime/v1 and proto/honeydo/system/v1.
//
// It has constants only, so it is safe for concurrent use.
package framewire

import "google.golang.org/protobuf/encoding/protowire"

// Field numbers, named Message_field as in the .proto files.
const (
	// SubscribeResponseWelcome is SubscribeResponse.welcome (Welcome).
	SubscribeResponseWelcome protowire.Number = 1
	// SubscribeResponseEvents is SubscribeResponse.events (EventBatch).
	SubscribeResponseEvents protowire.Number = 2
	// SubscribeResponseHeartbeat is SubscribeResponse.heartbeat (Heartbeat).
	SubscribeResponseHeartbeat protowire.Number = 3
	// EventBatchEvents is EventBatch.events (repeated Event).
	EventBatchEvents protowire.Number = 1
	// EventProbe is Event.probe (honeydo.system.v1.Probe), the load
	// generator's event.
	EventProbe protowire.Number = 299
	// ProbeSendTimeUnixMicros is Probe.send_time_unix_micros (int64).
	ProbeSendTimeUnixMicros protowire.Number = 1
)
