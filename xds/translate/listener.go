package translate

import (
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	rbacfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/prism-gw/prism/xds/model"
	"github.com/prism-gw/prism/xds/resource"
)

// Attributes Envoy sends to extproc with request_headers. All three are
// plain values Envoy can always serialise; the namespace is also in the path.
var extprocAttributes = []string{
	"connection.uri_san_peer_certificate",
	"request.id",
	"xds.route_metadata",
}

// httpsListener is the data API listener: mTLS with client certificates
// required, then RBAC, local rate limit and ext_proc per namespace route.
func httpsListener(l model.Listener) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:    resource.Listener,
		Address: socketAddress(l.Address, l.Port),
		// The per-connection buffer limit bounds the body Envoy buffers for
		// ext_proc (BUFFERED mode answers 413 beyond it).
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(l.BufferLimit),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(httpConnectionManager(l))},
			}},
			TransportSocket: &corev3.TransportSocket{
				Name:       "envoy.transport_sockets.tls",
				ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(downstreamTLS())},
			},
		}},
	}
}

// downstreamTLS requires a client certificate signed by the client CA; the
// certificates come over SDS so they rotate without a listener drain.
func downstreamTLS() *tlsv3.DownstreamTlsContext {
	return &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams: &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{
				Name: resource.ServerSecret, SdsConfig: adsSource(),
			}},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
				ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: resource.ClientCASecret, SdsConfig: adsSource()},
			},
			AlpnProtocols: []string{"h2", "http/1.1"},
		},
	}
}

func httpConnectionManager(l model.Listener) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: "prism",
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: adsSource(), RouteConfigName: resource.RouteConfig,
		}},
		// RBAC first so that an unknown client costs neither a token nor an
		// ext_proc round trip; the rate limit before ext_proc for the same
		// reason.
		HttpFilters: []*hcmv3.HttpFilter{
			httpFilter(resource.FilterRBAC, &rbacfilterv3.RBAC{}),
			httpFilter(resource.FilterRateLimit, &localratelimitv3.LocalRateLimit{StatPrefix: "prism_ratelimit"}),
			httpFilter(resource.FilterExtProc, extProc(l)),
			httpFilter(resource.FilterRouter, &routerv3.Router{}),
		},
		// Upstream never sees a client-supplied XFCC; the verified client URI
		// is set instead.
		ForwardClientCertDetails:    hcmv3.HttpConnectionManager_SANITIZE_SET,
		SetCurrentClientCertDetails: &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{Uri: true},
		UseRemoteAddress:            wrapperspb.Bool(true),
		// API.md: every response carries x-request-id.
		AlwaysSetRequestIdInResponse: true,
		// Keys may hold %2F and '/' runs; rewriting them would change keys.
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_KEEP_UNCHANGED,
		LocalReplyConfig:             localReplies(),
	}
}

// extProc configures the ext_proc filter: request headers always, the body
// buffered, nothing of the response (extproc answers with an
// ImmediateResponse). message_timeout covers a backend operation;
// max_message_timeout lets extproc extend one message with
// override_message_timeout, as the TimeSeries tail does for its 30 s wait.
func extProc(l model.Listener) *extprocv3.ExternalProcessor {
	return &extprocv3.ExternalProcessor{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: resource.ExtprocCluster}},
		},
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:   extprocv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
			RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
			ResponseHeaderMode:  extprocv3.ProcessingMode_SKIP,
			ResponseBodyMode:    extprocv3.ProcessingMode_NONE,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		RequestAttributes: extprocAttributes,
		MessageTimeout:    durationpb.New(l.MessageTimeout),
		MaxMessageTimeout: durationpb.New(l.MaxMessageTimeout),
		// A read answered at request_headers needs no body; extproc may say
		// so per request.
		AllowModeOverride: true,
		// Fail closed: without extproc no request may reach a backend.
		FailureModeAllow: false,
	}
}

// localReplies renders Envoy's own rate-limit rejections in the API.md error
// shape. Only replies flagged RL are rewritten; ext_proc's ImmediateResponses
// carry their own bodies and must pass untouched.
func localReplies() *hcmv3.LocalReplyConfig {
	body, _ := structpb.NewStruct(map[string]any{
		"error": map[string]any{
			"code":       "RESOURCE_EXHAUSTED",
			"message":    "namespace rate limit exceeded; retry later",
			"request_id": "%REQ(X-REQUEST-ID)%",
		},
	})
	return &hcmv3.LocalReplyConfig{
		Mappers: []*hcmv3.ResponseMapper{{
			Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
				ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: []string{"RL"}},
			}},
			BodyFormatOverride: &corev3.SubstitutionFormatString{
				Format:      &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: body},
				ContentType: "application/json",
			},
		}},
	}
}

func httpFilter(name string, cfg proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(cfg)}}
}
