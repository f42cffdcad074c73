#include "commands.h"

#include "apt_sources.h"
#include "builder.h"
#include "bundle.h"
#include "docker.h"
#include "images.h"
#include "fetch.h"
#include "interrupt.h"
#include "module_sign.h"
#include "parallel.h"
#include "pipeline.h"
#include "plugin_host.h"
#include "shard.h"
#include "table.h"

#include <kbuild/deb.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <regex>
#include <unistd.h>

namespace fs = std::filesystem;

namespace kbuild {

void add_trust(TrustPolicy& policy, const TargetOptions& target) {
    const auto& keyrings = !target.keyrings.empty() ? target.keyrings : target.distro_keyrings;
    if (!keyrings.empty()) policy.distro_keyrings[target.distro] = {keyrings.begin(), keyrings.end()};
    for (const auto& [prefix, keyring] : target.mirror_keyrings) policy.mirror_keyrings.emplace_back(prefix, keyring);
    policy.insecure_mirrors.insert(policy.insecure_mirrors.end(), target.insecure_mirrors.begin(),
                                   target.insecure_mirrors.end());
    if (!target.verify) policy.insecure_distros.insert(target.distro);
}

namespace {

std::vector<fs::path> plugin_search_path(const GlobalOptions& global) {
    std::vector<fs::path> dirs(global.plugin_dirs.begin(), global.plugin_dirs.end());
    return dirs.empty() ? PluginHost::default_directories() : dirs;
}

std::unique_ptr<PluginHost> load_plugins(const GlobalOptions& global) {
    auto host = std::make_unique<PluginHost>();
    host->load_directories(plugin_search_path(global));
    return host;
}

const Plugin& plugin_for(const PluginHost& host, const std::string& distro) {
    if (const Plugin* plugin = host.find(distro)) return *plugin;
    const auto known = host.known_distros();
    throw UsageError("unknown distro '" + distro + "' (" +
                     (known.empty() ? std::string("no plugins loaded; see kbuild plugins")
                                    : "known: " + join(known, ", ")) +
                     ")");
}

Options parse_plugin_options(const std::vector<std::string>& pairs) {
    Options options;
    for (const auto& pair : pairs) {
        const size_t eq = pair.find('=');
        if (eq == std::string::npos || eq == 0)
            throw UsageError("--option " + pair + ": expected KEY=VALUE");
        options[pair.substr(0, eq)] = pair.substr(eq + 1);
    }
    return options;
}

// The --option pairs (and the config file's) a request carries. A key the plugin's describe
// does not declare would be ignored, so a typo would silently widen the work: refused, naming
// the keys it does declare. A plugin without describe (an optional hook; ABI 1.0 has none)
// gets them all, as before.
Options plugin_options(PluginInstance& instance, const TargetOptions& target) {
    Options options = parse_plugin_options(target.plugin_options);
    const std::optional<Description> description = instance.describe();
    if (!description) return options;
    std::vector<std::string> declared;
    for (const auto& option : description->options) declared.push_back(option.name);
    for (const auto& [key, value] : options) {
        if (std::find(declared.begin(), declared.end(), key) != declared.end()) continue;
        const auto file = target.option_files.find(key);
        throw UsageError(target.distro + ": unknown option '" + key + "'" +
                         (file == target.option_files.end() ? "" : " in " + file->second) + " (" +
                         (declared.empty() ? std::string("it takes none") : "options: " + join(declared, ", ")) +
                         ")");
    }
    return options;
}

// A package file named on the command line must be one: a directory or a device is not taken
// for a missing file.
void check_package_file(const std::string& file) {
    std::error_code ec;
    const fs::file_status status = fs::status(file, ec);
    if (fs::is_regular_file(status)) return;
    if (fs::is_directory(status)) throw UsageError(file + ": is a directory, not a package file");
    if (fs::exists(status)) throw UsageError(file + ": not a regular file");
    throw UsageError(file + ": no such file");
}

std::vector<std::string> read_list(const std::string& path) {
    // A directory opens as a stream that reads nothing: it would pass for an empty list.
    if (fs::is_directory(path)) throw UsageError(path + ": is a directory, not a list of packages");
    std::ifstream in(path);
    if (!in) throw UsageError(path + ": cannot read the list");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        line.erase(0, line.find_first_not_of(" \t\r"));
        line.erase(line.find_last_not_of(" \t\r") + 1);
        if (!line.empty() && line.front() != '#') lines.push_back(line);
    }
    return lines;
}

// Keeps the releases --kernel, --latest and --shard select; newest first when --latest is set.
void select_releases(std::vector<Release>& releases, const TargetOptions& target) {
    if (!target.kernel_regex.empty()) {
        std::regex pattern;
        try {
            pattern = std::regex(target.kernel_regex, std::regex::extended);
        } catch (const std::regex_error& e) {
            throw UsageError("--kernel " + target.kernel_regex + ": " + e.what());
        }
        releases.erase(std::remove_if(releases.begin(), releases.end(),
                                      [&](const Release& r) {
                                          return !std::regex_search(r.release, pattern);
                                      }),
                       releases.end());
    }
    if (target.latest > 0) {
        std::stable_sort(releases.begin(), releases.end(), [](const Release& a, const Release& b) {
            return deb::compare_versions(a.release, b.release) > 0;
        });
        if (releases.size() > static_cast<size_t>(target.latest)) releases.resize(target.latest);
    }
    // Last: N workers split exactly the releases one run would take.
    if (!target.shard.empty()) {
        try {
            releases = releases_of_shard(releases, parse_shard(target.shard));
        } catch (const Error& e) {
            throw UsageError(e.what());
        }
    }
}

fs::path cache_dir_of(const GlobalOptions& global) {
    return fs::absolute(global.cache_dir.empty() ? default_cache_dir() : fs::path(global.cache_dir));
}

FetchOptions fetch_options(const GlobalOptions& global, const TargetOptions& target) {
    FetchOptions options;
    options.cache_dir = cache_dir_of(global);
    options.jobs = std::max(1, target.jobs);
    options.progress = ::isatty(STDERR_FILENO) && !global.quiet;
    return options;
}

// The trust policy of a run: the defaults, then the config file's, then the command line's.
TrustPolicy trust_policy(const TargetOptions& target) {
    TrustPolicy policy = default_trust_policy();
    add_trust(policy, target);
    return policy;
}

// Everything a verb that works on kernels needs, in the order it must be torn down.
struct Session {
    // fixed: the plugin to use (the built-in bundle reader); none are loaded then.
    Session(const GlobalOptions& global, const TargetOptions& target, const Plugin* fixed = nullptr)
        : plugins(fixed ? nullptr : load_plugins(global)),
          plugin(fixed ? *fixed : plugin_for(*plugins, target.distro)),
          fetcher(fetch_options(global, target)),
          trust(trust_policy(target), cache_dir_of(global)),
          context(make_host_context(cache_dir_of(global), fetcher, &trust)) {}

    std::unique_ptr<PluginHost> plugins;
    const Plugin& plugin;
    Fetcher fetcher;
    Trust trust;
    HostContext context;
};

// crawl, or batch when files or a list are given: the one shape everything after uses.
ReleaseList find_releases(PluginInstance& instance, const TargetOptions& target) {
    if (!target.files.empty() || !target.from_list.empty()) {
        BatchRequest request;
        request.distro = target.distro;
        request.arch = target.arch;
        request.options = plugin_options(instance, target);
        request.files = target.files;
        if (!target.from_list.empty()) {
            if (!target.files.empty()) throw UsageError("give files or --from-list, not both");
            request.files = read_list(target.from_list);
            request.names_only = true;
        } else {
            for (auto& file : request.files) {
                check_package_file(file);
                file = fs::absolute(file).string();
            }
        }
        return instance.batch_packages(request);
    }
    if (!instance.can_crawl())
        throw UsageError("the " + instance.plugin().name() +
                         " plugin cannot crawl: give package files or --from-list");
    return instance.crawl(crawl_request(instance, target));
}

Json release_json(const Release& r) {
    Json headers = Json::array();
    for (const auto& p : r.packages) headers.push_back(p.where());
    Json entry = {{"kernelrelease", r.release},
                  {"kernelversion", r.kernelversion},
                  {"target", r.target.empty() ? r.distro : r.target},
                  {"arch", r.arch},
                  {"headers", headers},         {"packages", r.packages}};
    if (!r.variant.empty()) entry["variant"] = r.variant;
    if (!r.unavailable.empty()) entry["unavailable"] = r.unavailable;
    return entry;
}

// What a plugin could not read is said, one line each; the work goes on with the rest and the
// exit status says it was incomplete.
int report_errors(const ReleaseList& list) {
    for (const auto& e : list.errors) spdlog::error("{}", e);
    return list.errors.empty() ? 0 : kExitFailed;
}

// The options a plugin declares, for kbuild plugins; nullopt when it has no describe hook
// or its describe fails (said in a warning: the plugin is still listed).
std::optional<Description> description_of(const Plugin& plugin) {
    if (plugin.api().describe == nullptr) return std::nullopt;
    try {
        const HostContext context;
        PluginInstance instance(plugin, context);
        return instance.describe();
    } catch (const std::exception& e) {
        spdlog::warn("{}", e.what());
        return std::nullopt;
    }
}

// DOCKER_HOST=unix:///path, else the standard socket.
fs::path docker_socket() {
    const char* host = std::getenv("DOCKER_HOST");
    const std::string prefix = "unix://";
    if (host && std::string(host).rfind(prefix, 0) == 0) return std::string(host).substr(prefix.size());
    return "/var/run/docker.sock";
}

std::vector<fs::path> builder_dirs(const GlobalOptions& global) {
    std::vector<fs::path> dirs = default_builder_dirs();
    dirs.insert(dirs.end(), global.builder_dirs.begin(), global.builder_dirs.end());
    return dirs;
}

}  // namespace

CrawlRequest crawl_request(PluginInstance& instance, const TargetOptions& target) {
    CrawlRequest request;
    request.distro = target.distro;
    request.arch = target.arch;
    request.mirrors = target.mirrors;
    request.options = plugin_options(instance, target);
    request.apt_mirrors = apt_mirror_uris(read_apt_sources());
    return request;
}

int run_guarded(const std::function<int()>& verb) {
    try {
        return verb();
    } catch (const UsageError& e) {
        spdlog::error("{}", e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return kExitFailed;
    }
}

std::unique_ptr<Builder> make_builder(const std::string& wanted, std::unique_ptr<Docker>& docker,
                                      const std::string& family) {
    if (wanted == "local") return std::make_unique<LocalBuilder>();
    const fs::path socket = docker_socket();
    if (!docker) docker = std::make_unique<Docker>(socket);
    if (!docker->ping()) {
        if (wanted == "docker")
            throw Error("docker: the daemon at " + socket.string() +
                        " does not answer (start dockerd, or use --builder local)");
        spdlog::info("builder: local (auto: the Docker daemon at {} does not answer)", socket.string());
        return std::make_unique<LocalBuilder>();
    }
    std::vector<BuilderImage> images = list_builder_images(*docker);
    if (images.empty()) {
        if (wanted == "docker")
            throw Error("docker: no kbuild builder images (run kbuild images build)");
        spdlog::info("builder: local (auto: Docker answers but has no builder images; run kbuild images build)");
        return std::make_unique<LocalBuilder>();
    }
    spdlog::info("builder: docker ({}{} builder images)", wanted == "auto" ? "auto: the daemon answers; " : "",
                 images.size());
    return std::make_unique<DockerBuilder>(*docker, std::move(images), family);
}

fs::path default_cache_dir() {
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "kbuild";
    if (::geteuid() == 0) return "/var/cache/kbuild";
    const char* home = std::getenv("HOME");
    return fs::path(home && *home ? home : "/tmp") / ".cache" / "kbuild";
}

int images_build_command(const GlobalOptions& global, const ImagesCommandOptions& images) {
    return run_guarded([&] {
        auto definitions = load_definitions(builder_dirs(global));
        if (!images.names.empty()) {
            std::vector<BuilderDefinition> picked;
            for (const auto& name : images.names) {
                auto it = std::find_if(definitions.begin(), definitions.end(),
                                       [&](const auto& d) { return d.name == name; });
                if (it == definitions.end())
                    throw UsageError("no builder definition named '" + name + "'");
                picked.push_back(*it);
            }
            definitions = picked;
        }
        if (definitions.empty()) throw UsageError("no builder definitions found (--builders-dir DIR)");
        Docker docker(docker_socket());
        if (!docker.ping())
            throw Error("docker: the daemon at " + docker_socket().string() + " does not answer");
        ImageBuildOptions options;
        options.work_dir = cache_dir_of(global) / "images";
        options.mirror = images.mirror;
        options.force = images.force;
        int failed = 0;
        for (size_t i = 0; i < definitions.size(); ++i) {
            spdlog::info("[{}/{}] {}", i + 1, definitions.size(), definitions[i].name);
            try {
                build_builder_image(docker, definitions[i], options);
            } catch (const std::exception& e) {
                spdlog::error("{}", e.what());
                ++failed;
            }
        }
        return failed ? kExitFailed : 0;
    });
}

int images_list_command(const GlobalOptions& global, const std::string& output) {
    return run_guarded([&] {
        Docker docker(docker_socket());
        if (!docker.ping())
            throw Error("docker: the daemon at " + docker_socket().string() + " does not answer");
        const auto images = list_builder_images(docker);
        const auto definitions = load_definitions(builder_dirs(global));
        auto current = [&](const BuilderImage& image) {
            for (const auto& d : definitions)
                if (d.name == image.name) return d.hash == image.definition_hash ? "yes" : "no (definition changed)";
            return "no definition";
        };
        if (output == "json") {
            Json list = Json::array();
            for (const auto& i : images)
                list.push_back({{"name", i.name}, {"image", i.image}, {"gcc", i.gcc}, {"cc", i.cc},
                                {"family", i.family}, {"size", i.size}, {"created", i.created},
                                {"definition_hash", i.definition_hash}, {"current", current(i)}});
            std::cout << Json{{"schema", kSchema}, {"images", list}}.dump(2) << '\n';
            return 0;
        }
        Table table({"NAME", "GCC", "SIZE", "CREATED", "DEFINITION", "CURRENT"});
        for (const auto& i : images)
            table.add({i.name, std::to_string(i.gcc), std::to_string(i.size / (1 << 20)) + " MiB",
                       i.created, i.definition_hash.substr(0, 12), current(i)});
        table.print(std::cout);
        return 0;
    });
}

int plugins_command(const GlobalOptions& global, const std::string& output) {
    return run_guarded([&] {
        const auto host = load_plugins(global);
        std::vector<std::optional<Description>> descriptions;
        for (const auto& plugin : host->plugins()) descriptions.push_back(description_of(*plugin));
        if (output == "json") {
            Json doc = {{"schema", kSchema}, {"plugins", Json::array()}, {"refused", Json::array()}};
            for (size_t i = 0; i < host->plugins().size(); ++i) {
                const auto& plugin = host->plugins()[i];
                // null: the plugin has no describe hook (optional; ABI 1.0 has none), so every
                // option reaches it.
                Json options = nullptr;
                if (descriptions[i]) {
                    options = Json::array();
                    for (const auto& o : descriptions[i]->options)
                        options.push_back({{"name", o.name}, {"default", o.default_value}, {"help", o.help}});
                }
                doc["plugins"].push_back({
                    {"name", plugin->name()},
                    {"version", plugin->version()},
                    {"abi", std::to_string(plugin->abi_major()) + "." +
                                std::to_string(plugin->abi_minor())},
                    {"distros", plugin->distros()},
                    {"builder_family", plugin->builder_family()},
                    {"path", plugin->path().string()},
                    {"options", options},
                });
            }
            for (const auto& refusal : host->refusals())
                doc["refused"].push_back({{"path", refusal.path.string()}, {"reason", refusal.reason}});
            std::cout << doc.dump(2) << '\n';
            return 0;
        }
        if (host->plugins().empty()) {
            std::vector<std::string> dirs;
            for (const auto& d : plugin_search_path(global)) dirs.push_back(d.string());
            spdlog::warn("no plugins loaded (searched: {}); use --plugin-dir DIR", join(dirs, ", "));
        }
        Table table({"NAME", "VERSION", "ABI", "DISTROS", "BUILDER", "PATH"});
        for (const auto& plugin : host->plugins())
            table.add({plugin->name(), plugin->version(),
                       std::to_string(plugin->abi_major()) + "." + std::to_string(plugin->abi_minor()),
                       join(plugin->distros(), ","), plugin->builder_family(), plugin->path().string()});
        table.print(std::cout);
        if (host->plugins().empty()) return 0;
        // Options under their own header: their defaults are too long for a column above.
        Table options({"PLUGIN", "OPTION", "HELP", "DEFAULT"});
        for (size_t i = 0; i < host->plugins().size(); ++i) {
            const std::string name = host->plugins()[i]->name();
            const auto& description = descriptions[i];
            if (!description) {
                options.add({name, "-", "not declared: every option is passed on"});
                continue;
            }
            if (description->options.empty()) options.add({name, "-", "none"});
            for (const auto& o : description->options) options.add({name, o.name, o.help, o.default_value});
        }
        std::cout << '\n';
        options.print(std::cout);
        return 0;
    });
}

int crawl_command(const GlobalOptions& global, const TargetOptions& target, const std::string& output) {
    return run_guarded([&] {
        Session session(global, target);
        PluginInstance instance(session.plugin, session.context);
        ReleaseList list = find_releases(instance, target);
        select_releases(list.releases, target);
        if (output == "json") {
            Json releases = Json::array();
            for (const auto& r : list.releases) releases.push_back(release_json(r));
            std::cout << Json{{"schema", kSchema}, {"distro", target.distro}, {"releases", releases},
                              {"errors", list.errors}}.dump(2)
                      << '\n';
            return report_errors(list);
        }
        Table table({"RELEASE", "VERSION", "PACKAGES", "STATUS"});
        for (const auto& r : list.releases) {
            std::vector<std::string> names;
            for (const auto& p : r.packages) names.push_back(p.name);
            table.add({release_id(r), r.kernelversion, join(names, " "),
                       r.unavailable.empty() ? "ok" : "unavailable: " + r.unavailable});
        }
        table.print(std::cout);
        spdlog::info("{} releases", list.releases.size());
        return report_errors(list);
    });
}

int batch_command(const GlobalOptions& global, const TargetOptions& target, const std::string& output) {
    return run_guarded([&] {
        if (target.files.empty() && target.from_list.empty())
            throw UsageError("batch needs package files or --from-list LIST");
        Session session(global, target);
        PluginInstance instance(session.plugin, session.context);
        ReleaseList list = find_releases(instance, target);
        select_releases(list.releases, target);
        if (output == "json") {
            Json releases = Json::object(), unavailable = Json::object(), entries = Json::array();
            for (const auto& r : list.releases) {
                entries.push_back(release_json(r));
                Json files = Json::array();
                for (const auto& p : r.packages) files.push_back(p.where());
                releases[release_id(r)] = files;
                if (!r.unavailable.empty()) unavailable[release_id(r)] = r.unavailable;
            }
            Json unclaimed = Json::array();
            for (const auto& u : list.unclaimed) unclaimed.push_back({{"file", u.file}, {"reason", u.reason}});
            // releases: release -> files (the plan); entries: the crawl's driverkit-style form.
            std::cout << Json{{"schema", kSchema}, {"distro", target.distro}, {"releases", releases},
                              {"unavailable", unavailable}, {"unclaimed", unclaimed},
                              {"entries", entries}, {"errors", list.errors}}.dump(2)
                      << '\n';
            return report_errors(list);
        }
        for (const auto& r : list.releases) {
            std::cout << release_id(r) << (r.unavailable.empty() ? "" : "  (unavailable: " + r.unavailable + ")")
                      << (r.release.empty() ? "  (the kernel is named from its tree when built)" : "") << '\n';
            for (const auto& p : r.packages) std::cout << "  " << p.where() << '\n';
        }
        for (const auto& u : list.unclaimed) spdlog::warn("{}: {}", u.file, u.reason);
        return report_errors(list);
    });
}

std::shared_ptr<const ModuleSigner> load_signer(const std::string& key, const std::string& cert) {
    if (key.empty() && cert.empty()) return nullptr;
    if (key.empty() || cert.empty()) throw UsageError("--sign-key and --sign-cert go together: name both, or neither");
    std::shared_ptr<const ModuleSigner> signer;
    try {
        signer = std::make_shared<const ModuleSigner>(key, cert);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    spdlog::info("signing modules as {} (serial {}, {}) with the hash each kernel's config names",
                 signer->identity().signer, signer->identity().key_id, cert);
    return signer;
}

int build_command(const GlobalOptions& global, const TargetOptions& flags,
                  const BuildCommandOptions& build, const std::string& output) {
    return run_guarded([&] {
        // A key that cannot sign is refused before anything is fetched or built.
        const std::shared_ptr<const ModuleSigner> signer = load_signer(build.sign_key, build.sign_cert);
        TargetOptions target = flags;
        const bool from_bundles = !build.from_bundle.empty();
        if (from_bundles) {
            if (!target.distro.empty() || !target.files.empty() || !target.from_list.empty())
                throw UsageError("--from-bundle builds from the bundles alone: no --distro, package files or --from-list");
            target.distro = "bundle";
            target.files = build.from_bundle;
        } else if (target.distro.empty()) {
            throw UsageError("--distro is required (or --from-bundle FILE...)");
        }
        Session session(global, target, from_bundles ? &bundle_plugin() : nullptr);
        std::unique_ptr<Docker> docker;
        const std::unique_ptr<Builder> builder =
            make_builder(build.builder, docker, session.plugin.builder_family());
        PipelineOptions options;
        options.module_src = fs::absolute(build.module_src);
        options.out_dir = fs::absolute(build.out_dir);
        options.cache_dir = cache_dir_of(global);
        options.module_version = build.module_version;
        for (const auto& m : build.modules) {
            const fs::path path(m);
            if (m.empty() || path.is_absolute() || std::any_of(path.begin(), path.end(), [](const fs::path& c) { return c == ".."; }))
                throw UsageError("--module " + m + ": not a module's path inside the module source (NAME or DIR/NAME)");
        }
        options.modules = build.modules;
        options.module_name = build.module_name;
        if (!build.naming_template.empty()) {
            options.naming = build.naming_template;
        } else if (!build.naming.empty()) {
            options.naming = naming_preset(build.naming);
            if (options.naming.empty()) throw UsageError("--naming " + build.naming + ": no such preset");
        }
        try {
            check_naming_template(options.naming);
        } catch (const Error& e) {
            throw UsageError(e.what());
        }
        options.force = build.force;
        options.jobs = std::max(1, target.jobs);
        options.build_timeout = build.build_timeout;
        options.trust = &session.trust;
        options.signer = signer;
        if (!fs::is_directory(options.module_src))
            throw UsageError(build.module_src + ": module source is not a directory");
        Pipeline pipeline(session.plugin, session.fetcher, *builder, options);

        std::vector<Release> releases;
        int incomplete = 0;
        {
            PluginInstance instance(session.plugin, pipeline.host_context());
            ReleaseList list = find_releases(instance, target);
            for (const auto& u : list.unclaimed) spdlog::warn("{}: {}", u.file, u.reason);
            incomplete = report_errors(list);
            releases = std::move(list.releases);
        }
        select_releases(releases, target);
        if (releases.empty()) {
            spdlog::warn("no kernel releases selected");
            return incomplete;
        }
        spdlog::info("building {} for {} {}kernel release(s)", pipeline.module_name(),
                     releases.size(), from_bundles ? "bundled " : target.distro + " ");
        const PipelineSummary summary = pipeline.run(releases);
        const std::string counts = "built " + std::to_string(summary.built) + ", skipped " +
                                   std::to_string(summary.skipped) + ", failed " + std::to_string(summary.failed) +
                                   ", unavailable " + std::to_string(summary.unavailable) + " (index: " +
                                   (options.out_dir / "index.json").string() + ")";
        // The summary is the table output's data: on stdout, where a script reading it looks.
        if (output == "json") {
            spdlog::info("{}", counts);
            std::cout << Json{{"schema", kSchema}, {"targets", summary.records}}.dump(2) << '\n';
        } else {
            std::cout << counts << '\n';
        }
        return summary.all_ok() && incomplete == 0 ? 0 : kExitFailed;
    });
}

int bundle_command(const GlobalOptions& global, const TargetOptions& target, const std::string& out_dir,
                   const std::string& output) {
    return run_guarded([&] {
        Session session(global, target);
        ReleaseList list;
        {
            PluginInstance instance(session.plugin, session.context);
            list = find_releases(instance, target);
        }
        for (const auto& u : list.unclaimed) spdlog::warn("{}: {}", u.file, u.reason);
        const int incomplete = report_errors(list);
        select_releases(list.releases, target);
        if (list.releases.empty()) {
            spdlog::warn("no kernel releases selected");
            return incomplete;
        }
        const fs::path out = fs::absolute(out_dir);
        KernelTrees trees(session.plugin, session.fetcher, cache_dir_of(global), &session.trust);
        const auto& releases = list.releases;
        std::mutex mutex;
        int failed = 0;
        Json made = Json::array();
        parallel_for(releases.size(), static_cast<size_t>(target.jobs), [&] {
            // One plugin instance per thread.
            return [&, instance = std::unique_ptr<PluginInstance>()](size_t i) mutable {
                const Release& release = releases[i];
                const std::string where = "[" + std::to_string(i + 1) + "/" + std::to_string(releases.size()) +
                                          "] " + release.distro + " " + release_id(release);
                try {
                    if (!instance) instance = std::make_unique<PluginInstance>(session.plugin, session.context);
                    if (!release.unavailable.empty()) throw Error("unavailable: " + release.unavailable);
                    const PreparedTree tree = trees.prepare(*instance, release);
                    Release named = release;
                    named.release = tree.release;
                    const BundleStats stats = write_bundle(tree.root, tree.kernel_dir, named, tree.checksum, out);
                    std::lock_guard lock(mutex);
                    spdlog::info("{}: {} ({:.1f} MiB, {} entries; {} of other architectures left out)", where,
                                 stats.file.filename().string(), stats.bytes / 1048576.0, stats.entries,
                                 stats.pruned);
                    made.push_back({{"file", stats.file.string()}, {"kernelrelease", named.release},
                                    {"distro", named.distro}, {"bytes", stats.bytes}, {"entries", stats.entries},
                                    {"checksum", tree.checksum}});
                } catch (const std::exception& e) {
                    stop_here_if_interrupted();
                    std::lock_guard lock(mutex);
                    spdlog::error("{}: {}", where, e.what());
                    ++failed;
                }
            };
        });
        spdlog::info("{} bundle(s) in {}, {} failed", made.size(), out.string(), failed);
        if (output == "json") std::cout << Json{{"schema", kSchema}, {"bundles", made}}.dump(2) << '\n';
        return failed == 0 && incomplete == 0 ? 0 : kExitFailed;
    });
}

int index_merge_command(const std::vector<std::string>& files) {
    return run_guarded([&] {
        const std::vector<fs::path> paths(files.begin(), files.end());
        const std::vector<TargetRecord> merged = merge_indexes(paths);
        std::cout << Json{{"schema", kSchema}, {"targets", merged}}.dump(2) << '\n';
        return 0;
    });
}

}  // namespace kbuild
