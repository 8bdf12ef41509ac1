//! The agent's shapes ([`super::fixtures`]) translated; the builder checked
//! against them; round trips; and every refusal with its exact message.

use super::fixtures::*;

#[test]
fn agent_http_listener_translates() {
    let p = translate_listener(&agent_http_listener()).unwrap();
    assert_eq!(p, expected_http());
    assert_eq!(p.cilium_listen_mark(), 0x0A00);
}

#[test]
fn agent_tcp_listener_translates_and_names_the_l7_chains_it_skips() {
    let p = translate_listener(&agent_tcp_listener()).unwrap();
    assert_eq!(p.kind, ListenerKind::Tcp { tls_variant: true });
    assert!(!p.is_ingress);
    assert_eq!((p.proxy_id, p.cilium_listen_mark()), (10002, 0x0B00));
    assert_eq!(p.access_log_path.as_deref(), Some(LOG));
    assert_eq!(
        p.unsupported_l7_chains,
        [
            "envoy.filters.network.mysql_proxy",
            "envoy.filters.network.mongo_proxy"
        ]
    );
}

#[test]
fn older_agent_proxylib_tcp_chain_gives_the_log_path_from_its_params() {
    let proxylib = NetworkFilter {
        proxylib: "libcilium.so".into(),
        proxylib_params: [
            ("access-log-path", LOG),
            ("xds-path", "/var/run/cilium/envoy/sockets/xds.sock"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into(),
        ..Default::default()
    };
    let l = Listener {
        filter_chains: vec![tcp_chain("egress-cluster", proxylib, None)],
        ..agent_listener("old", 10003, false, None)
    };
    let p = translate_listener(&l).unwrap();
    assert_eq!(p.kind, ListenerKind::Tcp { tls_variant: false });
    assert_eq!(p.access_log_path.as_deref(), Some(LOG));
}

#[test]
fn build_listener_is_the_agent_shape() {
    assert_eq!(build_listener(&expected_http()), agent_http_listener());
    let agent = agent_tcp_listener();
    let built = build_listener(&translate_listener(&agent).unwrap());
    assert_eq!(built.filter_chains[..2], agent.filter_chains[..2]);
    assert_eq!(built.listener_filters, agent.listener_filters);
    assert_eq!(
        (built.address, built.additional_addresses),
        (agent.address, agent.additional_addresses)
    );
}

#[test]
fn build_then_translate_round_trips() {
    let standalone = ProxyListener {
        name: "ingress-10080".into(),
        addresses: vec!["127.0.0.1:10080".parse().unwrap()],
        kind: ListenerKind::Http { tls_variant: false },
        transparent: true,
        mark: Some(0x0A00),
        denied_403_body: Some("Access denied".into()),
        access_log_path: None,
        bpf: BpfMetadataSummary {
            bpf_root: None,
            ipcache_name: "cilium_ipcache".into(),
            use_nphds: true,
            cache_entry_ttl: Duration::from_millis(5),
            cache_gc_interval: Duration::from_secs(1),
            ..agent_bpf_summary()
        },
        ..expected_http()
    };
    let l7lb = ProxyListener {
        name: "egress-l7lb".into(),
        addresses: vec![
            "10.0.0.9:15001".parse().unwrap(),
            "[fd00::9]:15001".parse().unwrap(),
        ],
        is_ingress: false,
        proxy_id: 15001,
        kind: ListenerKind::Tcp { tls_variant: true },
        denied_403_body: None,
        unsupported_l7_chains: vec!["envoy.filters.network.mongo_proxy".into()],
        bpf: BpfMetadataSummary {
            is_l7lb: true,
            enforce_policy_on_l7lb: true,
            ipv4_source_address: Some("10.0.0.9".parse().unwrap()),
            ipv6_source_address: Some("fd00::9".parse().unwrap()),
            l7lb_policy_name: Some("lb".into()),
            original_source_so_linger: Some(0),
            ..agent_bpf_summary()
        },
        ..expected_http()
    };
    for spec in [expected_http(), standalone, l7lb] {
        assert_eq!(translate_listener(&build_listener(&spec)).unwrap(), spec);
        let set = translate_listeners(&[listener_resource(&spec)]).unwrap();
        assert_eq!(set.listeners, [spec]);
    }
}

fn any(l: &Listener) -> (String, Any) {
    (l.name.clone(), pack_any(l.clone()))
}

#[test]
fn an_update_is_all_or_nothing() {
    let http = agent_http_listener();
    let tcp = agent_tcp_listener();
    let set = translate_listeners(&[any(&http), any(&tcp)]).unwrap();
    assert_eq!(set.listeners.len(), 2);
    assert!(set.ignored.is_empty());

    let clash = agent_listener("other", 10001, false, None);
    let clash = Listener {
        filter_chains: tcp.filter_chains.clone(),
        ..clash
    };
    assert_eq!(
        translate_listeners(&[any(&http), any(&clash)]).unwrap_err().to_string(),
        "listener \"other\": address: 127.0.0.1:10001 is also bound by listener \"ingress-proxy-10001\""
    );
    let mut wildcard = agent_tcp_listener();
    wildcard.additional_addresses[0].address = Some(sock("::", 10001));
    assert_eq!(
        translate_listeners(&[any(&http), any(&wildcard)]).unwrap_err().to_string(),
        "listener \"egress-proxy-10002\": additional_addresses[0].address: [::]:10001 is also bound by listener \"ingress-proxy-10001\""
    );
    // [::] is dual-stack: it also takes 127.0.0.1:10001.
    wildcard.additional_addresses[0].address = Some(sock("::", 10002));
    wildcard.address = Some(sock("::", 10001));
    assert_eq!(
        translate_listeners(&[any(&http), any(&wildcard)])
            .unwrap_err()
            .to_string(),
        "listener \"egress-proxy-10002\": address: [::]:10001 is also bound by listener \"ingress-proxy-10001\""
    );
    let mut broken = agent_tcp_listener();
    broken.listener_filters.truncate(1);
    assert!(translate_listeners(&[any(&http), any(&broken)]).is_err());
    assert_eq!(
        translate_listeners(&[any(&http), any(&http)])
            .unwrap_err()
            .to_string(),
        "listener \"ingress-proxy-10001\": resource: sent twice in one update"
    );
    let renamed = ("ingress".to_string(), pack_any(http.clone()));
    assert_eq!(
        translate_listeners(&[renamed]).unwrap_err().to_string(),
        "listener \"ingress\": name: the resource is named \"ingress\" but carries \"ingress-proxy-10001\""
    );
    let cluster = (
        NAME.to_string(),
        pack_any(build_original_dst_cluster(NAME, false)),
    );
    assert_eq!(
        translate_listeners(&[cluster]).unwrap_err().to_string(),
        "listener \"ingress-proxy-10001\": resource: type_url \"type.googleapis.com/envoy.config.cluster.v3.Cluster\" is not type.googleapis.com/envoy.config.listener.v3.Listener"
    );
}

#[test]
fn the_agents_admin_listener_is_ignored_and_only_under_its_name() {
    let mut hcm = agent_hcm("/envoy-admin");
    hcm.http_filters.remove(0);
    let admin = Listener {
        name: "envoy-admin-listener".into(),
        address: Some(sock("127.0.0.1", 9901)),
        filter_chains: vec![FilterChain {
            filters: vec![nf(names::HTTP_CONNECTION_MANAGER, pack_any(hcm))],
            ..Default::default()
        }],
        ..Default::default()
    };
    let set = translate_listeners(&[any(&admin)]).unwrap();
    assert!(set.listeners.is_empty());
    assert_eq!(
        set.ignored[0].reason,
        "the agent's Envoy admin listener: Portcullis serves its own admin and metrics endpoints"
    );
    let other = Listener {
        name: "admin".into(),
        ..admin
    };
    assert_eq!(
        translate_listeners(&[any(&other)]).unwrap_err().to_string(),
        "listener \"admin\": listener_filters: no cilium.bpf_metadata listener filter; Portcullis takes the direction, proxy_id and identity sources from it"
    );
}

/// `edit` applied to the agent's HTTP listener must fail with `part: reason`.
fn refused(edit: impl FnOnce(&mut Listener), expected: &str) {
    let mut l = agent_http_listener();
    edit(&mut l);
    let e = translate_listener(&l).unwrap_err();
    assert_eq!(e.to_string(), format!("listener \"{NAME}\": {expected}"));
}

fn hcm_of(l: &mut Listener, chain: usize) -> HttpConnectionManager {
    let Some(filter::ConfigType::TypedConfig(a)) = &l.filter_chains[chain].filters[1].config_type
    else {
        unreachable!()
    };
    HttpConnectionManager::decode(a.value.as_slice()).unwrap()
}

fn set_hcm(l: &mut Listener, chain: usize, hcm: HttpConnectionManager) {
    l.filter_chains[chain].filters[1] = nf(names::HTTP_CONNECTION_MANAGER, pack_any(hcm));
}

#[test]
fn refusals_name_the_listener_part_and_reason() {
    let bpf = |l: &mut Listener, any: Any| l.listener_filters[1] = lf(names::BPF_METADATA, any);
    refused(|l| bpf(l, Any { type_url: BpfMetadata::type_url(), value: vec![0x0a, 0x05] }),
        "listener_filters[1] cilium.bpf_metadata: typed_config does not decode: failed to decode Protobuf message: BpfMetadata.bpf_root: buffer underflow");
    refused(|l| bpf(l, pack_any(L7Policy::default())),
        "listener_filters[1] cilium.bpf_metadata: typed_config is \"type.googleapis.com/cilium.L7Policy\", expected type.googleapis.com/cilium.BpfMetadata");
    refused(
        |l| {
            bpf(
                l,
                pack_any(BpfMetadata {
                    proxy_id: 70000,
                    ..Default::default()
                }),
            )
        },
        "listener_filters[1] cilium.bpf_metadata: proxy_id 70000 is above 65535",
    );
    refused(
        |l| {
            bpf(
                l,
                pack_any(BpfMetadata {
                    ipcache_name: "../x".into(),
                    ..Default::default()
                }),
            )
        },
        "listener_filters[1] cilium.bpf_metadata: ipcache_name \"../x\" is not a file name",
    );
    refused(|l| l.listener_filters.push(lf("envoy.filters.listener.proxy_protocol", Any::default())),
        "listener_filters[2] envoy.filters.listener.proxy_protocol: a listener filter Portcullis does not implement");
    refused(
        |l| {
            l.address = Some(Address {
                address: Some(address::Address::Pipe(Pipe {
                    path: "/run/x.sock".into(),
                    mode: 0,
                })),
            })
        },
        "address: pipe \"/run/x.sock\": Portcullis listens on TCP sockets only",
    );
    refused(
        |l| l.address = Some(sock("localhost", 10001)),
        "address.address: \"localhost\" is not an IP address",
    );
    refused(
        |l| l.address = Some(sock("127.0.0.1", 0)),
        "address.port_value: 0 is not a TCP port (1-65535)",
    );
    refused(|l| {
        let Some(address::Address::SocketAddress(s)) = &mut l.additional_addresses[0].address.as_mut().unwrap().address else { unreachable!() };
        s.protocol = socket_address::Protocol::Udp as i32;
    }, "additional_addresses[0].address.protocol: UDP listeners are not supported; Portcullis proxies TCP only");
    refused(
        |l| l.udp_listener_config = Some(UdpListenerConfig::default()),
        "udp_listener_config: UDP listeners are not supported; Portcullis proxies TCP only",
    );
    refused(|l| l.socket_options.push(SocketOption { description: "IP_TRANSPARENT".into(), level: 0, name: 19, ..Default::default() }),
        "socket_options[0]: level 0 name 19 (\"IP_TRANSPARENT\") is not supported; only SO_MARK (level 1, name 36)");
    refused(|l| l.filter_chains[1].transport_socket.as_mut().unwrap().name = "envoy.transport_sockets.tls".into(),
        "filter_chains[1].transport_socket: \"envoy.transport_sockets.tls\" is not supported; only envoy.transport_sockets.raw_buffer and cilium.tls_wrapper");
    refused(|l| l.filter_chains[1].transport_socket = None,
        "filter_chains[1].transport_socket: transport_protocol tls without cilium.tls_wrapper: TLS passthrough is not supported");
    refused(|l| l.filter_chains[1].filter_chain_match.as_mut().unwrap().server_names = vec!["a".into()],
        "filter_chains[1].filter_chain_match.server_names: is not supported; Portcullis selects a chain by transport protocol only");
    refused(|l| drop(l.filter_chains[0].filters.remove(0)),
        "filter_chains[0].filters: [envoy.filters.network.http_connection_manager] is neither cilium.network + envoy.filters.network.http_connection_manager nor cilium.network + envoy.filters.network.tcp_proxy");
    refused(
        |l| l.filter_chains.push(l.filter_chains[0].clone()),
        "filter_chains[2]: a second plain-text chain (the first is filter_chains[0])",
    );
    refused(
        |l| {
            l.filter_chains[1] = tls_variant(tcp_chain(
                "ingress-cluster-tls",
                NetworkFilter::default(),
                None,
            ))
        },
        "filter_chains[1]: the TLS chain runs TCP but the plain-text chain runs HTTP",
    );
    refused(
        |l| drop(l.filter_chains.remove(0)),
        "filter_chains: no plain-text chain (transport_protocol raw_buffer or unset)",
    );
    refused(|l| {
        let mut hcm = hcm_of(l, 0);
        hcm.http_filters.remove(0);
        set_hcm(l, 0, hcm);
    }, "filter_chains[0].filters[1] envoy.filters.network.http_connection_manager: http_filters [envoy.filters.http.router] are not cilium.l7policy then envoy.filters.http.router");
    refused(|l| set_hcm(l, 0, agent_hcm("backend")),
        "filter_chains[0].filters[1] envoy.filters.network.http_connection_manager: route_config.virtual_hosts[0].routes[0] targets cluster \"backend\"; Portcullis forwards only to the original destination (\"ingress-cluster\")");
    refused(|l| set_hcm(l, 1, agent_hcm("ingress-cluster")),
        "filter_chains[1].filters[1] envoy.filters.network.http_connection_manager: route_config.virtual_hosts[0].routes[0] targets cluster \"ingress-cluster\"; Portcullis forwards only to the original destination (\"ingress-cluster-tls\")");
    refused(|l| {
        let mut hcm = hcm_of(l, 0);
        hcm.route_specifier = Some(RouteSpecifier::Rds(Rds::default()));
        set_hcm(l, 0, hcm);
    }, "filter_chains[0].filters[1] envoy.filters.network.http_connection_manager: rds: routes from RDS are not supported; the agent sends them inline");
    refused(|l| {
        let mut hcm = hcm_of(l, 1);
        hcm.http_filters[0] = hf(names::L7_POLICY, pack_any(L7Policy { access_log_path: "/tmp/other".into(), ..Default::default() }));
        set_hcm(l, 1, hcm);
    }, &format!("filter_chains[1]: access_log_path \"/tmp/other\" differs from the plain-text chain's \"{LOG}\""));
}
