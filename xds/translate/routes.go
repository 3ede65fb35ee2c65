package translate

import (
	"encoding/json"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	rbacfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/prism-gw/prism/xds/model"
	"github.com/prism-gw/prism/xds/resource"
)

// routeConfig has, in order: one live route per namespace, 404 routes for
// the other abstractions' paths under the namespace's name, and a catch-all
// 404. Namespace names are distinct and prefixes are path-separated, so no
// route shadows another.
func routeConfig(namespaces []model.Namespace) *routev3.RouteConfiguration {
	var routes []*routev3.Route
	for _, ns := range namespaces {
		routes = append(routes, namespaceRoute(ns))
	}
	for _, ns := range namespaces {
		for _, p := range ns.WrongPrefixes {
			name := "wrong-abstraction-" + strings.ReplaceAll(strings.TrimPrefix(p, "/v1/"), "/", "-")
			routes = append(routes, notFoundRoute(name, pathSeparated(p),
				"namespace "+ns.Name+" serves "+ns.Abstraction+" at "+ns.Prefix))
		}
	}
	routes = append(routes, notFoundRoute("unknown-namespace",
		&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		"unknown namespace or path; data API paths are /v1/kv/{ns}, /v1/ts/{ns} and /v1/graph/{ns}"))
	return &routev3.RouteConfiguration{
		Name: resource.RouteConfig,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "prism",
			Domains: []string{"*"},
			Routes:  routes,
		}},
	}
}

func pathSeparated(prefix string) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: prefix}}
}

// namespaceRoute sends a namespace's requests through RBAC, its rate limit
// and ext_proc. extproc answers every request with an ImmediateResponse, so
// the route's own action is only a safety net: should a request ever get
// past ext_proc it is answered 500 here and never forwarded anywhere.
func namespaceRoute(ns model.Namespace) *routev3.Route {
	perFilter := map[string]*anypb.Any{
		resource.FilterRBAC: mustAny(&rbacfilterv3.RBACPerRoute{Rbac: &rbacfilterv3.RBAC{Rules: namespaceRBAC(ns)}}),
	}
	if ns.RPS > 0 {
		perFilter[resource.FilterRateLimit] = mustAny(rateLimit(ns))
	}
	meta, _ := structpb.NewStruct(map[string]any{"namespace": ns.Name, "abstraction": ns.Abstraction})
	return &routev3.Route{
		Name:  "namespace-" + ns.Name,
		Match: pathSeparated(ns.Prefix),
		Metadata: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			resource.RouteMetadataKey: meta,
		}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 500,
			Body:   errorBody("INTERNAL", "the request was not answered by prism extproc"),
		}},
		ResponseHeadersToAdd: jsonContentType(),
		TypedPerFilterConfig: perFilter,
	}
}

// namespaceRBAC allows the namespace's owners and readers, matched exactly
// on the client certificate's URI SAN. Telling reads from writes is the
// policy's job in extproc, which sees the operation; Envoy only keeps
// strangers out. With no identities listed any authenticated client (any
// certificate from the client CA) is allowed.
func namespaceRBAC(ns model.Namespace) *rbacv3.RBAC {
	var principals []*rbacv3.Principal
	for _, id := range ns.Principals {
		principals = append(principals, &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{
			Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id},
			}},
		}})
	}
	if len(principals) == 0 {
		principals = []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Authenticated_{
			Authenticated: &rbacv3.Principal_Authenticated{},
		}}}
	}
	return &rbacv3.RBAC{
		Action: rbacv3.RBAC_ALLOW,
		Policies: map[string]*rbacv3.Policy{
			"namespace-clients": {
				Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}},
				Principals:  principals,
			},
		},
	}
}

// rateLimit is a token bucket of RPS tokens refilled every second, shared by
// all connections of this Envoy (the limit is per Envoy instance).
func rateLimit(ns model.Namespace) *localratelimitv3.LocalRateLimit {
	full := &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{
		Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED,
	}}
	return &localratelimitv3.LocalRateLimit{
		StatPrefix: "prism_ratelimit_" + ns.Name,
		TokenBucket: &typev3.TokenBucket{
			MaxTokens:     ns.RPS,
			TokensPerFill: wrapperspb.UInt32(ns.RPS),
			FillInterval:  durationpb.New(time.Second),
		},
		FilterEnabled:  full,
		FilterEnforced: full,
	}
}

// notFoundRoute answers 404 in the API.md error shape without calling
// extproc. A static body cannot hold the request id; the x-request-id
// response header carries it.
func notFoundRoute(name string, match *routev3.RouteMatch, message string) *routev3.Route {
	return &routev3.Route{
		Name:  name,
		Match: match,
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 404,
			Body:   errorBody("NOT_FOUND", message),
		}},
		ResponseHeadersToAdd: jsonContentType(),
		TypedPerFilterConfig: map[string]*anypb.Any{
			resource.FilterExtProc: mustAny(&extprocv3.ExtProcPerRoute{
				Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true},
			}),
		},
	}
}

func jsonContentType() []*corev3.HeaderValueOption {
	return []*corev3.HeaderValueOption{{
		Header:       &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}}
}

// errorBody is API.md's error JSON.
func errorBody(code, message string) *corev3.DataSource {
	type apiError struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	b, _ := json.Marshal(map[string]apiError{"error": {Code: code, Message: message}})
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: string(b)}}
}
