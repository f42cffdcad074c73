// `kbuild serve`: the config file's [serve] table and the flags over it, checked, then the
// service (serve/) runs with them.
#include "app/commands.h"
#include "app/config.h"
#include "plugin/plugin_host.h"
#include "serve/serve.h"
#include "serve/service.h"

#include <set>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

void check_modules(const std::vector<ModuleSource>& modules) {
    if (modules.empty())
        throw UsageError(
            "serve: no module sources: add a [serve.modules.NAME] table with path and version "
            "to the config file (--config)");
    std::set<std::string> versions;
    for (const auto& m : modules) {
        const std::string where = "[serve.modules." + m.name + "]";
        try {
            check_field("name", m.name + ".ko");
        } catch (const Error& e) {
            throw UsageError(where + ": the name must be the module's file name without .ko: " + e.what());
        }
        if (m.path.empty() || !fs::is_directory(m.path))
            throw UsageError(where + ": path " + m.path.string() + " is not a directory");
        try {
            check_field("moduleVersion", m.version);
        } catch (const Error& e) {
            throw UsageError(where + ": version: " + e.what());
        }
        if (!versions.insert(m.version).second)
            throw UsageError(where + ": version " + m.version + " is another module source's too");
    }
}

ServeSettings settings_from(const std::optional<fs::path>& file, const ServeFlags& flags) {
    ServeSettings s;
    if (file) read_serve_config(*file, s);
    if (!flags.listen.empty()) s.listen = flags.listen;
    if (!flags.out.empty()) s.out = flags.out;
    if (!flags.builder.empty()) s.builder = flags.builder;
    if (!flags.token_file.empty()) s.token_file = flags.token_file;
    if (!flags.sign_key.empty() || !flags.sign_cert.empty()) {
        s.sign_key = flags.sign_key;
        s.sign_cert = flags.sign_cert;
    }
    if (flags.jobs > 0) s.jobs = flags.jobs;
    if (flags.queue > 0) s.queue = flags.queue;
    if (s.out.empty()) throw UsageError("serve: --out DIR (or out in [serve]) is needed");
    if (s.builder != "auto" && s.builder != "docker" && s.builder != "local")
        throw UsageError("serve: builder " + s.builder + ": expected auto, docker or local");
    check_modules(s.modules);
    if (s.sign_key.empty() != s.sign_cert.empty())
        throw UsageError("serve: sign_key and sign_cert (--sign-key, --sign-cert) go together: name both, or neither");
    return s;
}

}  // namespace

int serve_command(const GlobalOptions& global, const std::string& config, const ServeFlags& flags) {
    return run_guarded([&]() -> int {
        const auto file = config_file(config);
        const ServeSettings settings = settings_from(file, flags);
        ServeContext context;
        context.plugin_dirs = global.plugin_dirs.empty()
                                  ? PluginHost::default_directories()
                                  : std::vector<fs::path>(global.plugin_dirs.begin(), global.plugin_dirs.end());
        context.cache_dir = fs::absolute(global.cache_dir.empty() ? default_cache_dir() : fs::path(global.cache_dir));
        context.cache_max = cache_max_of(global);
        context.signer = load_signer(settings.sign_key, settings.sign_cert);
        // Each distro's table of the config file: its mirrors, options and keyrings.
        context.target_of = [file](const std::string& distro) {
            TargetOptions target;
            target.distro = distro;
            if (file) apply_config(*file, target);
            return target;
        };
        return run_service(settings, context);
    });
}

}  // namespace kbuild
