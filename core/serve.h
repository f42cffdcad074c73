// `kbuild serve`: the build service. Its settings come from the [serve] table of the config
// file (and its flags); its builds go through the one pipeline `kbuild build` uses.
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
//   request_timeout = 10          # seconds to send one request's headers and body; then 408
//   max_threads = 32              # requests handled at once
//   shutdown_grace = 30           # seconds SIGTERM waits for running builds
//   retry_failed_after = 3600     # a failed target is tried again when asked after this
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

#include "commands.h"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace kbuild {

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
    std::chrono::seconds request_timeout{10};
    int max_threads = 32;
    std::chrono::seconds shutdown_grace{30};
    std::chrono::seconds retry_failed_after{3600};
    std::chrono::seconds crawl_ttl{600};
    std::vector<std::string> build_types;
    std::vector<ModuleSource> modules;
    std::string sign_key, sign_cert;  // both or neither (relative: to the config file)
};

// Reads [serve] and [serve.modules.NAME] over `settings`. Throws Error naming the file and the
// key on an unknown key or a value of the wrong kind.
void read_serve_config(const std::filesystem::path& file, ServeSettings& settings);

// The flags of `kbuild serve`; empty or 0: the config's value, else the default.
struct ServeFlags {
    std::string listen, out, builder, token_file, sign_key, sign_cert;
    int jobs = 0, queue = 0;
};

// Runs the service until SIGINT or SIGTERM. `config`: the --config flag (may be empty).
int serve_command(const GlobalOptions& global, const std::string& config, const ServeFlags& flags);

}  // namespace kbuild
