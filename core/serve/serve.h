// The build service: its settings come from the [serve] table of the config file (read by
// app/config) and `kbuild serve`'s flags; its builds go through the one pipeline `kbuild build` uses.
//
//   [serve]
//   listen = "127.0.0.1:8093"
//   out = "/var/lib/kbuild/serve"
//   jobs = 2                      # builds at once
//   queue = 64                    # targets waiting; more: 429
//   builder = "auto"              # auto | docker | local
//   build_timeout = 900           # seconds one build may take
//   token_file = "/etc/kbuild/serve.token"   # POST needs "Authorization: Bearer <its text>"
//   max_body = 1048576            # bytes of a POST body; more: 413
//   posts_per_minute = 60         # per client address; 0: no limit
//   posts_per_minute_total = 0    # from all clients together (then 503); 0: no limit
//   request_timeout = 10          # seconds to send one request's headers and body; then 408
//   max_threads = 32              # requests handled at once (those that touch files)
//   max_connections = 4096        # open at once; more: 503 with Retry-After
//   shutdown_grace = 30           # seconds SIGTERM waits for running builds
//   retry_failed_after = 3600     # a failed target is tried again when asked after this,
//   max_failed = 1000             # and forgotten then, or when more failures are newer
//   crawl_ttl = 600               # seconds a distro's crawl is reused
//   build_types = ["debian", "ubuntu-generic"]   # default: every one the plugins serve
//   sign_key = "/etc/kbuild/signing_key.pem"     # sign each module (both or neither; see
//   sign_cert = "/etc/kbuild/signing_key.x509"   # module_sign.h); the artifacts' records name the signer
//
//   [serve.modules.hello]         # one table per module source; the name is its <name>.ko
//   path = "/usr/src/hello"
//   version = "1.0.0"             # what requests name as moduleVersion
//
// Mirrors and plugin options per distro are the config file's usual [<distro>] tables.
#pragma once

#include "targets/targets.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kbuild {

class ModuleSigner;

struct ModuleSource {
    std::string name;  // the .ko's name without .ko
    std::filesystem::path path;
    std::string version;
};

struct ServeSettings {
    std::string listen = "127.0.0.1:8093";
    std::string out;
    int jobs = 2;
    int queue = 64;
    std::string builder = "auto";
    std::chrono::seconds build_timeout{900};
    std::string token_file;
    std::size_t max_body = 1 << 20;
    int posts_per_minute = 60;
    int posts_per_minute_total = 0;
    std::chrono::seconds request_timeout{10};
    int max_threads = 32;
    int max_connections = 4096;
    std::size_t max_failed = 1000;
    std::chrono::seconds shutdown_grace{30};
    std::chrono::seconds retry_failed_after{3600};
    std::chrono::seconds crawl_ttl{600};
    std::vector<std::string> build_types;
    std::vector<ModuleSource> modules;
    std::string sign_key, sign_cert;  // both or neither (relative: to the config file)
};

// What the service takes from the command line and the config file beside its settings.
struct ServeContext {
    std::vector<std::filesystem::path> plugin_dirs;
    std::filesystem::path cache_dir;
    std::uint64_t cache_max = 0;  // --cache-max: bytes; 0: no bound
    // A distro's target as the config file sets it (mirrors, options, keyrings): what the
    // service crawls with and trusts.
    std::function<TargetOptions(const std::string& distro)> target_of;
    std::shared_ptr<const ModuleSigner> signer;  // null: modules are not signed
};

// Runs the service until SIGINT or SIGTERM; throws (UsageError for a bad setting) when it
// cannot start.
int run_service(const ServeSettings& settings, const ServeContext& context);

}  // namespace kbuild
