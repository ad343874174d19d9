package framewire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
)

// TestFieldNumbersMatchDescriptors ties every constant to the generated
// descriptor of its field, by name and kind: renumbering a field in the
// .proto files fails here, not in a benchmark that silently sees nothing.
func TestFieldNumbersMatchDescriptors(t *testing.T) {
	for _, c := range []struct {
		msg  proto.Message
		name protoreflect.Name
		kind protoreflect.Kind
		got  protowire.Number
	}{
		{&realtimev1.SubscribeResponse{}, "welcome", protoreflect.MessageKind, SubscribeResponseWelcome},
		{&realtimev1.SubscribeResponse{}, "events", protoreflect.MessageKind, SubscribeResponseEvents},
		{&realtimev1.SubscribeResponse{}, "heartbeat", protoreflect.MessageKind, SubscribeResponseHeartbeat},
		{&realtimev1.EventBatch{}, "events", protoreflect.MessageKind, EventBatchEvents},
		{&realtimev1.Event{}, "probe", protoreflect.MessageKind, EventProbe},
		{&systemv1.Probe{}, "send_time_unix_micros", protoreflect.Int64Kind, ProbeSendTimeUnixMicros},
	} {
		d := c.msg.ProtoReflect().Descriptor()
		f := d.Fields().ByName(c.name)
		switch {
		case f == nil:
			t.Errorf("%s has no field %s", d.FullName(), c.name)
		case protowire.Number(f.Number()) != c.got || f.Kind() != c.kind:
			t.Errorf("%s is field %d (%s), framewire says %d (%s)", f.FullName(), f.Number(), f.Kind(), c.got, c.kind)
		}
	}
}
