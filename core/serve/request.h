// What a node asks the build service for, as it arrives: the fields of a module request, each
// checked before it names a path or reaches a build; a POST /v1/module body and a
// /v1/module/... path read into a request or refused with the field and why. No I/O here: the
// HTTP layer (service_http) answers, and fuzz/service_request_fuzz feeds it hostile input.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace kbuild {

// What a node asks for. Every field has passed check_field, so none can name a path or carry
// shell text.
struct ModuleRequest {
    std::string build_type;      // "debian", "ubuntu-aws": a plugin and its target
    std::string arch;            // x86_64 | aarch64 (canonical_arch)
    std::string kernelrelease;   // uname -r
    std::string kernelversion;   // the N of uname -v's "#N"
    std::string module_version;  // picks the module source (the service's config)
    std::string config_sha256;   // of the node's kernel config
    std::string config_md5;      // likewise, to compare with the headers' .config

    // <buildType>/<arch>/<moduleVersion>/<kernelrelease>/<kernelversion>/<config-sha256>: the
    // directories of the artifact's URL, and the target's identity.
    std::string key() const;
};

// Throws kbuild::Error saying why a field's value is refused ("kernelrelease: '..' is not a
// kernel release (...)"). Fields: buildType, architecture, kernelrelease, kernelversion,
// moduleVersion, configSha256, name (a module file, "hello.ko").
void check_field(std::string_view field, std::string_view value);
// Whether check_field takes the value.
bool valid_field(std::string_view field, std::string_view value);

// x86_64 and amd64 are one architecture, named x86_64 in keys; likewise aarch64 and arm64.
// Empty when unknown.
std::string canonical_arch(std::string_view arch);
// The name plugins use (amd64, arm64) for a canonical one.
std::string plugin_arch(std::string_view canonical);

// The request a key names; nullopt when any of its parts fails check_field.
std::optional<ModuleRequest> parse_key(std::string_view key);

// A request refused: the field at fault ("body" for the body as a whole, "" for a path that
// names no module) and a line saying why. `not_found`: the path names nothing (HTTP 404), as
// opposed to a field's bad value (HTTP 400).
struct Refused {
    std::string field, why;
    bool not_found = false;
};

// What the service serves, for checking a request against it.
struct Servable {
    // Throws Error saying why a (well-formed) build type cannot be served.
    std::function<void(const std::string&)> check_build_type;
    // Module version -> the module source's name.
    std::map<std::string, std::string> modules;
};

// A POST /v1/module body: buildType, architecture, kernelrelease, kernelversion (default "1"),
// moduleVersion (default: the one module version, when there is one) and kernelConfigData (the
// config, base64). The request's config hashes are set from the decoded config.
struct PostedModule {
    ModuleRequest request;
    std::string config;
};
std::variant<PostedModule, Refused> read_module_post(std::string_view body, const Servable& servable);

// The part of a GET path after "/v1/module/": <buildType>/<arch>/<moduleVersion>/
// <kernelrelease>/<kernelversion>/<config-sha256>/<name>.ko.
struct ModulePath {
    ModuleRequest request;
    std::string name;
};
std::variant<ModulePath, Refused> read_module_path(std::string_view path);

}  // namespace kbuild
