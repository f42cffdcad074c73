// One HTTP exchange on libcurl, for the fetcher (http(s) through proxies) and the Docker client
// (the Engine API over a unix socket): libcurl parses the response (status, headers, chunked
// bodies), follows redirects and decides proxies (NO_PROXY with suffixes and CIDRs); this file
// adds a time limit on silence, streamed request bodies and the head handed over before the
// body, and says what went wrong in a form the callers can word.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace kbuild::http {

struct Request {
    std::string method = "GET";
    std::string url;                           // http(s)://...; with unix_socket, http://host/path
    std::filesystem::path unix_socket;         // set: connect to this socket, not to the host
    std::vector<std::string> headers;          // "Name: value"
    std::string proxy;                         // empty: none (the environment is not read here)
    std::string no_proxy;                      // hosts, domains, CIDRs the proxy is not used for
    std::chrono::milliseconds timeout{30000};  // to connect, and the longest silence after
    int max_redirects = 0;                     // 0: a redirect is the answer
    // A body: `body` whole, or `body_source` streamed (chunked), which fills the buffer and
    // returns how much it wrote, 0 at the end; it throws to abandon the request, which then
    // never ends well-formed.
    std::string body;
    std::function<std::size_t(char* buffer, std::size_t size)> body_source;
};

// The head of the final response (after redirects).
struct Head {
    int status = 0;
    std::string reason;                                       // "Not Found"; empty in HTTP/2
    std::vector<std::pair<std::string, std::string>> fields;  // names in lower case
    std::string field(const std::string& lower_name) const;   // the last one's value, or ""
    bool chunked() const;
    std::int64_t content_length() const;  // -1 when not given
};

// Why an exchange ended early.
enum class Failure {
    none,
    refused,          // connection refused
    connect,          // another reason the connection could not be made (errno set)
    resolve,          // the host name is not known
    timed_out,        // no byte for `timeout`
    tls_certificate,  // the server's certificate does not verify
    tls,              // another TLS failure
    too_many_redirects,
    closed_early,  // the connection ended before the body did
    protocol,      // a reply that is not HTTP, a redirect to another scheme
    other,
};

struct Outcome {
    Failure failure = Failure::none;
    std::string message;  // libcurl's words, one line
    int os_error = 0;     // errno behind a failed connection, if any
    Head head;
    std::int64_t body_bytes = 0;  // body bytes handed to on_body
    bool head_seen = false;
};

// Called once with the final response's head, before any of its body; may throw to stop.
using HeadHandler = std::function<void(const Head&)>;
// Called with each piece of the body; may throw to stop.
using BodyHandler = std::function<void(const char* bytes, std::size_t count)>;

// Runs the exchange. Failures of the connection or the protocol come back in the outcome; an
// exception a handler or the body source threw is thrown again from here.
Outcome exchange(const Request& request, const HeadHandler& on_head, const BodyHandler& on_body);

// `text` %-encoded for a URL's path or query.
std::string url_escape(const std::string& text);

// NO_PROXY as curl(1) and most tools read it (a host matches itself and its subdomains,
// "*" everything, an address range in CIDR form its addresses), for a request to `port`:
// entries naming a port ("host:8080", "[::1]:8080") count only for that port.
std::string no_proxy_for_port(const std::string& list, unsigned port);

}  // namespace kbuild::http
