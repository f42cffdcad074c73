#include "app/commands.h"

#include "build/auto_builder.h"
#include "build/builder.h"
#include "build/docker.h"
#include "build/images.h"
#include "fetch/apt_sources.h"
#include "fetch/cache.h"
#include "fetch/fetch.h"
#include "output/bundle_writer.h"
#include "output/module_sign.h"
#include "pipeline/pipeline.h"
#include "plugin/plugin_host.h"
#include "targets/shard.h"
#include "targets/targets.h"
#include "util/interrupt.h"
#include "util/parallel.h"
#include "util/table.h"

#include <kbuild/deb.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <regex>

namespace fs = std::filesystem;

namespace kbuild {

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

fs::path cache_dir_of(const GlobalOptions& global) {
    return fs::absolute(global.cache_dir.empty() ? default_cache_dir() : fs::path(global.cache_dir));
}

std::uint64_t size_option(const std::string& flag, const std::string& text) {
    try {
        return parse_size(text);
    } catch (const Error& e) {
        throw UsageError(flag + ": " + e.what());
    }
}

FetchOptions fetch_options(const GlobalOptions& global, const TargetOptions& target) {
    FetchOptions options;
    options.cache_dir = cache_dir_of(global);
    options.jobs = std::max(1, target.jobs);
    options.progress = ::isatty(STDERR_FILENO) && !global.quiet;
    return options;
}

// Everything a verb that works on kernels needs, in the order it must be torn down.
struct Session {
    // fixed: the plugin to use (the built-in bundle reader); none are loaded then.
    Session(const GlobalOptions& global, const TargetOptions& target, const Plugin* fixed = nullptr)
        : plugins(fixed ? nullptr : load_plugins(global)),
          plugin(fixed ? *fixed : plugin_for(*plugins, target.distro)),
          fetcher(fetch_options(global, target)),
          trust(trust_policy(plugin, target), cache_dir_of(global)),
          context(make_host_context(cache_dir_of(global), fetcher, &trust)) {}

    std::unique_ptr<PluginHost> plugins;
    const Plugin& plugin;
    Fetcher fetcher;
    Trust trust;
    HostContext context;
};

Json release_json(const Release& r) {
    Json headers = Json::array();
    for (const auto& p : r.packages) headers.push_back(p.where());
    Json entry = {{"kernelrelease", r.release},
                  {"kernelversion", r.kernelversion},
                  {"target", r.target.empty() ? r.distro : r.target},
                  {"arch", r.arch},
                  {"headers", headers},
                  {"packages", r.packages}};
    if (!r.variant.empty()) entry["variant"] = r.variant;
    if (!r.unavailable.empty()) entry["unavailable"] = r.unavailable;
    if (r.is_source()) entry["config"] = r.config.where();
    return entry;
}

// What a plugin could not read is said, one line each; the work goes on with the rest and the
// exit status says it was incomplete.
int report_errors(const ReleaseList& list) {
    for (const auto& e : list.errors) spdlog::error("{}", e);
    return list.errors.empty() ? 0 : kExitFailed;
}

std::vector<std::string> target_names(const std::vector<TargetInfo>& targets) {
    std::vector<std::string> names;
    for (const auto& t : targets) names.push_back(t.name);
    return names;
}

// Where `images build --rootfs` writes the definitions of users' root file systems.
fs::path rootfs_definitions_dir(const GlobalOptions& global) {
    return cache_dir_of(global) / "images" / "rootfs-definitions";
}

std::vector<fs::path> builder_dirs(const GlobalOptions& global) {
    std::vector<fs::path> dirs = default_builder_dirs();
    dirs.insert(dirs.end(), global.builder_dirs.begin(), global.builder_dirs.end());
    return dirs;
}

}  // namespace

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

fs::path default_cache_dir() {
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "kbuild";
    if (::geteuid() == 0) return "/var/cache/kbuild";
    const char* home = std::getenv("HOME");
    return fs::path(home && *home ? home : "/tmp") / ".cache" / "kbuild";
}

int images_build_command(const GlobalOptions& global, const ImagesCommandOptions& images) {
    return run_guarded([&] {
        const fs::path work_dir = cache_dir_of(global) / "images";
        std::vector<BuilderDefinition> definitions;
        if (!images.rootfs.empty()) {
            if (!images.names.empty()) throw UsageError("--rootfs builds one image: give --name, not definitions");
            if (images.name.empty()) throw UsageError("--rootfs needs --name NAME (the image is kbuild/builder-NAME)");
            definitions.push_back(write_rootfs_definition(
                rootfs_definitions_dir(global), {images.name, images.rootfs, images.family, images.gcc, images.clang,
                                                 images.cc, parse_cross_option(images.cross)}));
        } else {
            definitions = load_definitions(builder_dirs(global));
        }
        if (!images.names.empty()) {
            std::vector<BuilderDefinition> picked;
            for (const auto& name : images.names) {
                auto it =
                    std::find_if(definitions.begin(), definitions.end(), [&](const auto& d) { return d.name == name; });
                if (it == definitions.end()) throw UsageError("no builder definition named '" + name + "'");
                picked.push_back(*it);
            }
            definitions = picked;
        }
        if (definitions.empty()) throw UsageError("no builder definitions found (--builders-dir DIR)");
        Docker docker(docker_socket());
        if (!docker.ping()) throw Error("docker: the daemon at " + docker_socket().string() + " does not answer");
        ImageBuildOptions options;
        options.work_dir = work_dir;
        options.mirror = images.mirror;
        options.force = images.force;
        std::set<std::string> imported;
        options.imported = &imported;
        int failed = 0;
        for (size_t i = 0; i < definitions.size(); ++i) {
            spdlog::info("[{}/{}] {}", i + 1, definitions.size(), definitions[i].name);
            try {
                const bool built = build_builder_image(docker, definitions[i], options);
                // A user's root is checked to hold the compiler it was said to; one that does
                // not is removed, never chosen.
                if (built && !images.rootfs.empty()) {
                    try {
                        check_image_compiler(docker, definitions[i]);
                    } catch (const Error&) {
                        remove_builder_image(docker, definitions[i]);
                        fs::remove_all(definitions[i].dir);
                        throw;
                    }
                }
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
        if (!docker.ping()) throw Error("docker: the daemon at " + docker_socket().string() + " does not answer");
        const auto images = list_builder_images(docker);
        // The definitions kbuild wrote for --rootfs images too: theirs is current while the
        // tarball is unchanged.
        std::vector<fs::path> dirs = builder_dirs(global);
        dirs.insert(dirs.begin(), rootfs_definitions_dir(global));
        const auto definitions = load_definitions(dirs);
        auto current = [&](const BuilderImage& image) {
            for (const auto& d : definitions)
                if (d.name == image.name) return d.hash == image.definition_hash ? "yes" : "no (definition changed)";
            return "no definition";
        };
        if (output == "json") {
            Json list = Json::array();
            for (const auto& i : images)
                list.push_back({{"name", i.name},
                                {"image", i.image},
                                {"gcc", i.gcc},
                                {"clang", i.clang},
                                {"cc", i.cc},
                                {"cross", i.cross},
                                {"family", i.family},
                                {"size", i.size},
                                {"created", i.created},
                                {"definition_hash", i.definition_hash},
                                {"current", current(i)}});
            std::cout << Json{{"schema", kSchema}, {"images", list}}.dump(2) << '\n';
            return 0;
        }
        Table table({"NAME", "COMPILER", "CROSS", "SIZE", "CREATED", "DEFINITION", "CURRENT"});
        for (const auto& i : images) {
            std::string compiler;
            if (i.gcc > 0) compiler = "gcc " + std::to_string(i.gcc);
            if (i.clang > 0)
                compiler += (compiler.empty() ? "" : ", ") + std::string("clang ") + std::to_string(i.clang);
            std::string cross;
            for (const auto& [arch, prefix] : i.cross) cross += (cross.empty() ? "" : ",") + arch;
            table.add({i.name, compiler, cross.empty() ? "-" : cross, std::to_string(i.size / (1 << 20)) + " MiB",
                       i.created, i.definition_hash.substr(0, 12), current(i)});
        }
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
                    {"abi", std::to_string(plugin->abi_major()) + "." + std::to_string(plugin->abi_minor())},
                    {"distros", plugin->distros()},
                    {"targets", target_names(served_targets(*plugin, descriptions[i]))},
                    {"builder_family", plugin->builder_family()},
                    {"path", plugin->path().string()},
                    {"options", options},
                    {"keyrings", descriptions[i] ? Json(descriptions[i]->keyrings) : Json::object()},
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
        Table table({"NAME", "VERSION", "ABI", "DISTROS", "TARGETS", "BUILDER", "PATH"});
        for (size_t i = 0; i < host->plugins().size(); ++i) {
            const auto& plugin = host->plugins()[i];
            table.add({plugin->name(), plugin->version(),
                       std::to_string(plugin->abi_major()) + "." + std::to_string(plugin->abi_minor()),
                       join(plugin->distros(), ","), join(target_names(served_targets(*plugin, descriptions[i])), ","),
                       plugin->builder_family().empty() ? "-" : plugin->builder_family(), plugin->path().string()});
        }
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
        ReleaseList list = find_releases(instance, target, cache_dir_of(global));
        select_releases(list.releases, target, &instance);
        if (output == "json") {
            Json releases = Json::array();
            for (const auto& r : list.releases) releases.push_back(release_json(r));
            std::cout << Json{{"schema", kSchema},
                              {"distro", target.distro},
                              {"releases", releases},
                              {"errors", list.errors}}
                             .dump(2)
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
        ReleaseList list = find_releases(instance, target, cache_dir_of(global));
        select_releases(list.releases, target, &instance);
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
            std::cout << Json{{"schema", kSchema},          {"distro", target.distro}, {"releases", releases},
                              {"unavailable", unavailable}, {"unclaimed", unclaimed},  {"entries", entries},
                              {"errors", list.errors}}
                             .dump(2)
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

int build_command(const GlobalOptions& global, const TargetOptions& flags, const BuildCommandOptions& build,
                  const std::string& output) {
    return run_guarded([&] {
        // A key that cannot sign is refused before anything is fetched or built.
        const std::shared_ptr<const ModuleSigner> signer = load_signer(build.sign_key, build.sign_cert);
        TargetOptions target = flags;
        const bool from_bundles = !build.from_bundle.empty();
        if (from_bundles) {
            if (!target.distro.empty() || !target.files.empty() || !target.from_list.empty())
                throw UsageError(
                    "--from-bundle builds from the bundles alone: no --distro, package files or --from-list");
            target.distro = "bundle";
            target.files = build.from_bundle;
        } else if (target.distro.empty()) {
            throw UsageError("--distro is required (or --from-bundle FILE...)");
        }
        Session session(global, target, from_bundles ? &bundle_plugin() : nullptr);
        std::unique_ptr<Docker> docker;
        const std::unique_ptr<Builder> builder = make_builder(build.builder, docker, session.plugin.builder_family());
        PipelineOptions options;
        options.module_src = fs::absolute(build.module_src);
        options.out_dir = fs::absolute(build.out_dir);
        options.cache_dir = cache_dir_of(global);
        options.cache_max = cache_max_of(global);
        options.module_version = build.module_version;
        for (const auto& m : build.modules) {
            const fs::path path(m);
            if (m.empty() || path.is_absolute() ||
                std::any_of(path.begin(), path.end(), [](const fs::path& c) { return c == ".."; }))
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
            ReleaseList list = find_releases(instance, target, cache_dir_of(global));
            for (const auto& u : list.unclaimed) spdlog::warn("{}: {}", u.file, u.reason);
            incomplete = report_errors(list);
            releases = std::move(list.releases);
            select_releases(releases, target, &instance);
        }
        if (releases.empty()) {
            spdlog::warn("no kernel releases selected");
            return incomplete;
        }
        spdlog::info("building {} for {} {}kernel release(s)", pipeline.module_name(), releases.size(),
                     from_bundles ? "bundled " : target.distro + " ");
        const PipelineSummary summary = pipeline.run(releases);
        const std::string counts = "built " + std::to_string(summary.built) + ", skipped " +
                                   std::to_string(summary.skipped) + ", failed " + std::to_string(summary.failed) +
                                   ", unavailable " + std::to_string(summary.unavailable) +
                                   " (index: " + (options.out_dir / "index.json").string() + ")";
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
            list = find_releases(instance, target, cache_dir_of(global));
            select_releases(list.releases, target, &instance);
        }
        for (const auto& u : list.unclaimed) spdlog::warn("{}: {}", u.file, u.reason);
        const int incomplete = report_errors(list);
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
                const std::string where = "[" + std::to_string(i + 1) + "/" + std::to_string(releases.size()) + "] " +
                                          release.distro + " " + release_id(release);
                try {
                    if (!instance) instance = std::make_unique<PluginInstance>(session.plugin, session.context);
                    if (!release.unavailable.empty()) throw Error("unavailable: " + release.unavailable);
                    const PreparedTree tree = trees.prepare(*instance, release);
                    Release named = release;
                    named.release = tree.release;
                    const BundleStats stats = write_bundle(tree.root, tree.kernel_dir, named, tree.checksum, out);
                    std::lock_guard lock(mutex);
                    spdlog::info("{}: {} ({:.1f} MiB, {} entries; {} of other architectures left out)", where,
                                 stats.file.filename().string(), stats.bytes / 1048576.0, stats.entries, stats.pruned);
                    made.push_back({{"file", stats.file.string()},
                                    {"kernelrelease", named.release},
                                    {"distro", named.distro},
                                    {"bytes", stats.bytes},
                                    {"entries", stats.entries},
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

std::uint64_t cache_max_of(const GlobalOptions& global) {
    return global.cache_max.empty() ? 0 : size_option("--cache-max", global.cache_max);
}

int cache_list_command(const GlobalOptions& global, const std::string& output) {
    return run_guarded([&] {
        const Cache cache(cache_dir_of(global));
        const auto entries = cache.entries();
        std::uint64_t total = 0;
        for (const auto& e : entries) total += e.bytes;
        const auto when = [](std::int64_t seconds) {
            const std::time_t time = static_cast<std::time_t>(seconds);
            std::tm tm{};
            gmtime_r(&time, &tm);
            char text[32];
            std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
            return std::string(text);
        };
        if (output == "json") {
            Json list = Json::array();
            for (const auto& e : entries)
                list.push_back({{"path", e.path.string()},
                                {"kind", e.kind},
                                {"bytes", e.bytes},
                                {"last_used", when(e.last_used)},
                                {"in_use", e.in_use}});
            std::cout << Json{{"schema", kSchema}, {"cache", cache.dir().string()}, {"bytes", total}, {"entries", list}}
                             .dump(2)
                      << '\n';
            return 0;
        }
        Table table({"KIND", "NAME", "SIZE", "LAST USED", "IN USE"});
        for (const auto& e : entries)
            table.add(
                {e.kind, e.path.filename().string(), size_text(e.bytes), when(e.last_used), e.in_use ? "yes" : "no"});
        table.print(std::cout);
        std::cout << entries.size() << " entries, " << size_text(total) << " in " << cache.dir().string();
        if (const std::uint64_t max = cache_max_of(global); max > 0) std::cout << " (at most " << size_text(max) << ")";
        std::cout << '\n';
        return 0;
    });
}

int cache_prune_command(const GlobalOptions& global, const std::string& max) {
    return run_guarded([&] {
        const std::uint64_t bound = max.empty() ? cache_max_of(global) : size_option("--max", max);
        const Cache cache(cache_dir_of(global));
        const int leftovers = cache.remove_leftovers();
        const Cache::Pruned pruned = cache.prune(bound);
        for (const auto& e : pruned.evicted) spdlog::info("evicted {} ({})", e.path.string(), size_text(e.bytes));
        spdlog::info("{}: {} leftovers of killed runs removed, {} entries evicted ({}), {} kept{}",
                     cache.dir().string(), leftovers, pruned.evicted.size(), size_text(pruned.freed),
                     size_text(pruned.kept),
                     pruned.in_use > 0 ? ", " + std::to_string(pruned.in_use) + " in use left alone" : "");
        return 0;
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
