package prism_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	ordersv1 "github.com/prism-gw/prism/examples/orders/v1"
	"github.com/prism-gw/prism/proto/prism"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// TestDeclarationsOfTheExample reads the example's options into the
// namespace config that protoc-gen-prism emits and `prism ns apply` applies.
func TestDeclarationsOfTheExample(t *testing.T) {
	decls, err := prism.FileDeclarations(ordersv1.File_examples_orders_v1_orders_proto)
	if err != nil {
		t.Fatal(err)
	}
	if len(decls) != 2 {
		t.Fatalf("got %d declarations, want Order and OrderEvent", len(decls))
	}
	order, events := decls[0], decls[1]
	want := &configv1.Namespace{
		Namespace: "orders", Abstraction: configv1.Abstraction_KEYVALUE, Backend: "auto", AccessPattern: configv1.AccessPattern_READ_HEAVY,
		EstimatedReadRps: 2000, EstimatedWriteRps: 200, EstimatedDataSizeGb: 5,
		// 64+2+6 (id) + 254+5+6 (email) + 32+6+6 (status) + 32+11 (total_cents) + 200+15+6 (shipping.street) + 100+13+6 (shipping.city)
		EstimatedRecordBytes: 764,
		Schema: &configv1.Schema{
			Pii:     []*configv1.PiiField{{Path: "email", Class: configv1.PiiClass_EMAIL, AccessAudit: true}, {Path: "shipping.street", Class: configv1.PiiClass_ADDRESS}},
			Indexes: []*configv1.Index{{Path: "status"}},
		},
	}
	if !proto.Equal(order.Namespace, want) {
		t.Errorf("Order declares\n%v\nwant\n%v", order.Namespace, want)
	}
	if order.Key.Name() != "id" || order.MaxLength["shipping.street"] != 200 {
		t.Errorf("Order key %v, max lengths %v", order.Key.Name(), order.MaxLength)
	}
	if events.Key.Name() != "order_id" || events.EventTime.Name() != "at" || events.EventID.Name() != "id" ||
		events.Namespace.GetAbstraction() != configv1.Abstraction_TIMESERIES || events.Namespace.GetRetentionDays() != 30 {
		t.Errorf("OrderEvent = key %v time %v id %v, %v", events.Key.Name(), events.EventTime.Name(), events.EventID.Name(), events.Namespace)
	}
	if strings.Contains(events.Namespace.String(), "schema") {
		t.Errorf("OrderEvent has no PII or index but got a schema: %v", events.Namespace)
	}
}
