package bridgepb_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// The wire contract, transcribed by hand from upstream Snakepit's
// priv/proto/snakepit_bridge.proto (shared/reference/UPSTREAM.md §1). It is
// deliberately not derived from the descriptors: a change to the .proto that
// breaks wire compatibility with upstream must fail here.
//
// Field types are written as in the .proto: scalar kinds by name, messages of
// this package by their short name, other messages by full name, maps as
// map<key,value>.

const (
	protoPackage = "snakepit.bridge"
	serviceName  = "BridgeService"
)

// label values of wireField.label.
const (
	single   = ""
	repeated = "repeated"
)

type wireField struct {
	name   string
	number protoreflect.FieldNumber
	typ    string
	label  string // single or repeated (maps are written as map<k,v> with label single)
	oneof  string // name of the containing oneof, "" if none
}

type wireMessage struct {
	name   string
	fields []wireField
}

type wireRPC struct {
	name            string
	request         string
	response        string
	clientStreaming bool
	serverStreaming bool
}

var wireMessages = []wireMessage{
	{"PingRequest", []wireField{
		{"message", 1, "string", single, ""},
	}},
	{"PingResponse", []wireField{
		{"message", 1, "string", single, ""},
		{"server_time", 2, "google.protobuf.Timestamp", single, ""},
	}},
	{"InitializeSessionRequest", []wireField{
		{"session_id", 1, "string", single, ""},
		{"metadata", 2, "map<string,string>", single, ""},
		{"config", 3, "SessionConfig", single, ""},
	}},
	{"SessionConfig", []wireField{
		{"enable_caching", 1, "bool", single, ""},
		{"cache_ttl_seconds", 2, "int32", single, ""},
		{"enable_telemetry", 3, "bool", single, ""},
	}},
	{"InitializeSessionResponse", []wireField{
		{"success", 1, "bool", single, ""},
		{"error_message", 2, "string", single, ""},
		{"available_tools", 3, "map<string,ToolSpec>", single, ""},
	}},
	{"CleanupSessionRequest", []wireField{
		{"session_id", 1, "string", single, ""},
		{"force", 2, "bool", single, ""},
	}},
	{"CleanupSessionResponse", []wireField{
		{"success", 1, "bool", single, ""},
		{"resources_cleaned", 2, "int32", single, ""},
	}},
	{"ToolSpec", []wireField{
		{"name", 1, "string", single, ""},
		{"description", 2, "string", single, ""},
		{"parameters", 3, "ParameterSpec", repeated, ""},
		{"metadata", 4, "map<string,string>", single, ""},
		{"supports_streaming", 5, "bool", single, ""},
	}},
	{"ParameterSpec", []wireField{
		{"name", 1, "string", single, ""},
		{"type", 2, "string", single, ""},
		{"description", 3, "string", single, ""},
		{"required", 4, "bool", single, ""},
		{"default_value", 5, "google.protobuf.Any", single, ""},
		{"validation_json", 6, "string", single, ""},
	}},
	{"ExecuteToolRequest", []wireField{
		{"session_id", 1, "string", single, ""},
		{"tool_name", 2, "string", single, ""},
		{"parameters", 3, "map<string,google.protobuf.Any>", single, ""},
		{"metadata", 4, "map<string,string>", single, ""},
		{"stream", 5, "bool", single, ""},
		{"binary_parameters", 6, "map<string,bytes>", single, ""},
	}},
	{"ExecuteToolResponse", []wireField{
		{"success", 1, "bool", single, ""},
		{"result", 2, "google.protobuf.Any", single, ""},
		{"error_message", 3, "string", single, ""},
		{"metadata", 4, "map<string,string>", single, ""},
		{"execution_time_ms", 5, "int64", single, ""},
		{"binary_result", 6, "bytes", single, ""},
	}},
	{"ToolChunk", []wireField{
		{"chunk_id", 1, "string", single, ""},
		{"data", 2, "bytes", single, ""},
		{"is_final", 3, "bool", single, ""},
		{"metadata", 4, "map<string,string>", single, ""},
	}},
	{"GetSessionRequest", []wireField{
		{"session_id", 1, "string", single, ""},
	}},
	{"GetSessionResponse", []wireField{
		{"session_id", 1, "string", single, ""},
		{"metadata", 2, "map<string,string>", single, ""},
		{"created_at", 3, "google.protobuf.Timestamp", single, ""},
		{"tool_count", 4, "int32", single, ""},
	}},
	{"HeartbeatRequest", []wireField{
		{"session_id", 1, "string", single, ""},
		{"client_time", 2, "google.protobuf.Timestamp", single, ""},
	}},
	{"HeartbeatResponse", []wireField{
		{"server_time", 1, "google.protobuf.Timestamp", single, ""},
		{"session_valid", 2, "bool", single, ""},
	}},
	{"RegisterToolsRequest", []wireField{
		{"session_id", 1, "string", single, ""},
		{"tools", 2, "ToolRegistration", repeated, ""},
		{"worker_id", 3, "string", single, ""},
	}},
	{"ToolRegistration", []wireField{
		{"name", 1, "string", single, ""},
		{"description", 2, "string", single, ""},
		{"parameters", 3, "ParameterSpec", repeated, ""},
		{"metadata", 4, "map<string,string>", single, ""},
		{"supports_streaming", 5, "bool", single, ""},
	}},
	{"RegisterToolsResponse", []wireField{
		{"success", 1, "bool", single, ""},
		{"tool_ids", 2, "map<string,string>", single, ""},
		{"error_message", 3, "string", single, ""},
	}},
	{"GetExposedElixirToolsRequest", []wireField{
		{"session_id", 1, "string", single, ""},
	}},
	{"GetExposedElixirToolsResponse", []wireField{
		{"tools", 1, "ToolSpec", repeated, ""},
	}},
	{"ExecuteElixirToolRequest", []wireField{
		{"session_id", 1, "string", single, ""},
		{"tool_name", 2, "string", single, ""},
		{"parameters", 3, "map<string,google.protobuf.Any>", single, ""},
		{"metadata", 4, "map<string,string>", single, ""},
	}},
	{"ExecuteElixirToolResponse", []wireField{
		{"success", 1, "bool", single, ""},
		{"result", 2, "google.protobuf.Any", single, ""},
		{"error_message", 3, "string", single, ""},
		{"metadata", 4, "map<string,string>", single, ""},
		{"execution_time_ms", 5, "int64", single, ""},
		{"binary_result", 6, "bytes", single, ""},
	}},
	{"TelemetryEvent", []wireField{
		{"event_parts", 1, "string", repeated, ""},
		{"measurements", 2, "map<string,TelemetryValue>", single, ""},
		{"metadata", 3, "map<string,string>", single, ""},
		{"timestamp_ns", 4, "int64", single, ""},
		{"correlation_id", 5, "string", single, ""},
	}},
	{"TelemetryValue", []wireField{
		{"int_value", 1, "int64", single, "value"},
		{"float_value", 2, "double", single, "value"},
		{"string_value", 3, "string", single, "value"},
	}},
	{"TelemetryControl", []wireField{
		{"toggle", 1, "TelemetryToggle", single, "control"},
		{"sampling", 2, "TelemetrySamplingUpdate", single, "control"},
		{"filter", 3, "TelemetryEventFilter", single, "control"},
	}},
	{"TelemetryToggle", []wireField{
		{"enabled", 1, "bool", single, ""},
	}},
	{"TelemetrySamplingUpdate", []wireField{
		{"sampling_rate", 1, "double", single, ""},
		{"event_patterns", 2, "string", repeated, ""},
	}},
	{"TelemetryEventFilter", []wireField{
		{"allow", 1, "string", repeated, ""},
		{"deny", 2, "string", repeated, ""},
	}},
}

var wireRPCs = []wireRPC{
	{"Ping", "PingRequest", "PingResponse", false, false},
	{"InitializeSession", "InitializeSessionRequest", "InitializeSessionResponse", false, false},
	{"CleanupSession", "CleanupSessionRequest", "CleanupSessionResponse", false, false},
	{"GetSession", "GetSessionRequest", "GetSessionResponse", false, false},
	{"Heartbeat", "HeartbeatRequest", "HeartbeatResponse", false, false},
	{"ExecuteTool", "ExecuteToolRequest", "ExecuteToolResponse", false, false},
	{"ExecuteStreamingTool", "ExecuteToolRequest", "ToolChunk", false, true},
	{"RegisterTools", "RegisterToolsRequest", "RegisterToolsResponse", false, false},
	{"GetExposedElixirTools", "GetExposedElixirToolsRequest", "GetExposedElixirToolsResponse", false, false},
	{"ExecuteElixirTool", "ExecuteElixirToolRequest", "ExecuteElixirToolResponse", false, false},
	{"StreamTelemetry", "TelemetryControl", "TelemetryEvent", true, true},
}

func TestWireFile(t *testing.T) {
	fd := bridgepb.File_snakepit_bridge_proto
	assert.Equal(t, protoreflect.FullName(protoPackage), fd.Package(), "proto package")
	assert.Equal(t, protoreflect.Proto3, fd.Syntax(), "syntax")
	assert.Zero(t, fd.Enums().Len(), "the protocol has no enums")
	assert.Zero(t, fd.Extensions().Len(), "the protocol has no extensions")
	require.Equal(t, 1, fd.Services().Len(), "the protocol has exactly one service")
	assert.Equal(t, protoreflect.Name(serviceName), fd.Services().Get(0).Name(), "service name")

	var imports []string
	for i := 0; i < fd.Imports().Len(); i++ {
		imports = append(imports, fd.Imports().Get(i).Path())
	}
	assert.ElementsMatch(t, []string{"google/protobuf/any.proto", "google/protobuf/timestamp.proto"}, imports)
}

func TestWireMessages(t *testing.T) {
	msgs := bridgepb.File_snakepit_bridge_proto.Messages()
	for _, want := range wireMessages {
		t.Run(want.name, func(t *testing.T) {
			md := msgs.ByName(protoreflect.Name(want.name))
			require.NotNil(t, md, "message %s is missing from the proto", want.name)
			assert.Equal(t, protoreflect.FullName(protoPackage+"."+want.name), md.FullName())

			got := describeFields(md)
			for _, f := range want.fields {
				g, ok := got[f.name]
				if assert.True(t, ok, "%s.%s is missing from the proto", want.name, f.name) {
					assert.Equal(t, f, g, "%s.%s", want.name, f.name)
				}
			}
			wantNames := map[string]bool{}
			for _, f := range want.fields {
				wantNames[f.name] = true
			}
			for _, name := range sortedKeys(got) {
				assert.True(t, wantNames[name], "%s.%s = %d is in the proto but not in the upstream table",
					want.name, name, got[name].number)
			}

			// Only map entries may be nested; enums, extensions and nested
			// messages are not part of the protocol.
			for i := 0; i < md.Messages().Len(); i++ {
				assert.True(t, md.Messages().Get(i).IsMapEntry(),
					"nested message %s is not in the upstream table", md.Messages().Get(i).FullName())
			}
			assert.Zero(t, md.Enums().Len(), "%s has nested enums", want.name)
			assert.Zero(t, md.Extensions().Len(), "%s has nested extensions", want.name)

			var oneofs []string
			for i := 0; i < md.Oneofs().Len(); i++ {
				oneofs = append(oneofs, string(md.Oneofs().Get(i).Name()))
			}
			assert.ElementsMatch(t, wantOneofs(want), oneofs, "%s oneofs", want.name)
		})
	}
}

func TestWireNoExtraMessages(t *testing.T) {
	known := map[string]bool{}
	for _, m := range wireMessages {
		require.False(t, known[m.name], "table lists %s twice", m.name)
		known[m.name] = true
	}
	msgs := bridgepb.File_snakepit_bridge_proto.Messages()
	for i := 0; i < msgs.Len(); i++ {
		name := string(msgs.Get(i).Name())
		assert.True(t, known[name], "message %s is in the proto but not in the upstream table", name)
	}
	assert.Equal(t, len(wireMessages), msgs.Len(), "number of messages")
}

func TestWireRPCs(t *testing.T) {
	sd := bridgepb.File_snakepit_bridge_proto.Services().ByName(serviceName)
	require.NotNil(t, sd, "service %s", serviceName)
	methods := sd.Methods()

	known := map[string]bool{}
	for _, want := range wireRPCs {
		require.False(t, known[want.name], "table lists %s twice", want.name)
		known[want.name] = true
		t.Run(want.name, func(t *testing.T) {
			m := methods.ByName(protoreflect.Name(want.name))
			require.NotNil(t, m, "rpc %s is missing from the proto", want.name)
			got := wireRPC{
				name:            string(m.Name()),
				request:         localName(m.Input()),
				response:        localName(m.Output()),
				clientStreaming: m.IsStreamingClient(),
				serverStreaming: m.IsStreamingServer(),
			}
			assert.Equal(t, want, got)
			assert.Equal(t, fmt.Sprintf("%s.%s.%s", protoPackage, serviceName, want.name), string(m.FullName()))
		})
	}
	for i := 0; i < methods.Len(); i++ {
		name := string(methods.Get(i).Name())
		assert.True(t, known[name], "rpc %s is in the proto but not in the upstream table", name)
	}
	assert.Equal(t, len(wireRPCs), methods.Len(), "number of rpcs")
}

// TestWireServiceDesc checks the generated gRPC code agrees with the table:
// the service name on the wire and which RPCs are streams.
func TestWireServiceDesc(t *testing.T) {
	desc := bridgepb.BridgeService_ServiceDesc
	assert.Equal(t, protoPackage+"."+serviceName, desc.ServiceName)

	got := map[string]wireRPC{}
	for _, m := range desc.Methods {
		got[m.MethodName] = wireRPC{name: m.MethodName}
	}
	for _, s := range desc.Streams {
		got[s.StreamName] = wireRPC{name: s.StreamName, clientStreaming: s.ClientStreams, serverStreaming: s.ServerStreams}
	}
	want := map[string]wireRPC{}
	for _, r := range wireRPCs {
		want[r.name] = wireRPC{name: r.name, clientStreaming: r.clientStreaming, serverStreaming: r.serverStreaming}
	}
	assert.Equal(t, want, got)
}

// describeFields turns a message's fields into table rows, keyed by name.
func describeFields(md protoreflect.MessageDescriptor) map[string]wireField {
	out := map[string]wireField{}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		f := wireField{name: string(fd.Name()), number: fd.Number(), typ: typeName(fd), label: single}
		if fd.IsList() {
			f.label = repeated
		}
		if o := fd.ContainingOneof(); o != nil {
			f.oneof = string(o.Name())
			if o.IsSynthetic() {
				f.oneof = "synthetic:" + f.oneof // proto3 `optional`: not in upstream
			}
		}
		out[f.name] = f
	}
	return out
}

// typeName writes a field's type as the table does.
func typeName(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return fmt.Sprintf("map<%s,%s>", typeName(fd.MapKey()), typeName(fd.MapValue()))
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return localName(fd.Message())
	case protoreflect.EnumKind:
		return "enum " + string(fd.Enum().FullName())
	default:
		return fd.Kind().String()
	}
}

// localName is a message's short name inside this package, its full name outside.
func localName(md protoreflect.MessageDescriptor) string {
	if md.ParentFile() != nil && md.ParentFile().Package() == protoPackage {
		return string(md.Name())
	}
	return string(md.FullName())
}

func wantOneofs(m wireMessage) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range m.fields {
		if f.oneof != "" && !seen[f.oneof] {
			seen[f.oneof] = true
			out = append(out, f.oneof)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
