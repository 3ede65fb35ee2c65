package client_test

import (
	"strings"
	"testing"

	"github.com/prism-gw/prism/client"
	ordersv1 "github.com/prism-gw/prism/examples/orders/v1"
)

func TestCheckLengths(t *testing.T) {
	limits := map[string]int{"status": 4, "shipping.city": 3, "shipping.street": 10}
	tests := []struct {
		name string
		m    *ordersv1.Order
		want string
	}{
		{"within", &ordersv1.Order{Status: "paid", Shipping: &ordersv1.Address{City: "Rio"}}, ""},
		{"unset nested message", &ordersv1.Order{Status: "paid"}, ""},
		{"top-level over", &ordersv1.Order{Status: "refunded"}, "field status of orders.v1.Order is 8 bytes, over its max_length of 4"},
		{"nested over", &ordersv1.Order{Shipping: &ordersv1.Address{City: "Paris"}}, "field shipping.city of orders.v1.Order is 5 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := client.CheckLengths(tt.m.ProtoReflect(), limits)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("CheckLengths = %v, want %q", err, tt.want)
			}
		})
	}
}
