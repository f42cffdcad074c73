#include "cli.h"

#include "host_services.h"
#include "log.h"
#include "plugin_host.h"
#include "table.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

#ifndef KBUILD_VERSION
#define KBUILD_VERSION "0.0.0"
#endif

namespace fs = std::filesystem;

namespace kbuild {
namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Flags every verb shares.
struct GlobalOptions {
    std::vector<std::string> plugin_dirs;
    bool verbose = false;
    bool quiet = false;
};

std::string join(const std::vector<std::string>& items, const char* separator) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += separator;
        out += item;
    }
    return out;
}

PluginHost load_plugins(const GlobalOptions& global) {
    PluginHost host;
    std::vector<fs::path> dirs;
    for (const auto& dir : global.plugin_dirs) dirs.emplace_back(dir);
    if (dirs.empty()) dirs = PluginHost::default_directories();
    host.load_directories(dirs);
    return host;
}

// `kbuild plugins`: what was loaded, from where, and what was refused.
int plugins_verb(const GlobalOptions& global, const std::string& output) {
    PluginHost host = load_plugins(global);
    if (output == "json") {
        Json doc = {{"schema", kSchema}, {"plugins", Json::array()}, {"refused", Json::array()}};
        for (const auto& plugin : host.plugins()) {
            doc["plugins"].push_back({
                {"name", plugin->name()},
                {"version", plugin->version()},
                {"abi", std::to_string(plugin->abi_major()) + "." +
                            std::to_string(plugin->abi_minor())},
                {"distros", plugin->distros()},
                {"builder_family", plugin->builder_family()},
                {"path", plugin->path().string()},
            });
        }
        for (const auto& refusal : host.refusals())
            doc["refused"].push_back({{"path", refusal.path.string()}, {"reason", refusal.reason}});
        std::cout << doc.dump(2) << '\n';
        return 0;
    }
    if (host.plugins().empty()) {
        spdlog::warn("no plugins loaded (searched: {}); use --plugin-dir DIR",
                     join([&] {
                         std::vector<std::string> dirs = global.plugin_dirs;
                         if (dirs.empty())
                             for (const auto& d : PluginHost::default_directories())
                                 dirs.push_back(d.string());
                         return dirs;
                     }(),
                          ", "));
    }
    Table table({"NAME", "VERSION", "ABI", "DISTROS", "BUILDER", "PATH"});
    for (const auto& plugin : host.plugins())
        table.add({plugin->name(), plugin->version(),
                   std::to_string(plugin->abi_major()) + "." + std::to_string(plugin->abi_minor()),
                   join(plugin->distros(), ","), plugin->builder_family(), plugin->path().string()});
    table.print(std::cout);
    return 0;
}

}  // namespace

int run_cli(int argc, char** argv) {
    CLI::App app{"kbuild: build kernel modules and eBPF probes for every kernel of every distro",
                 "kbuild"};
    app.set_version_flag("--version", std::string("kbuild ") + KBUILD_VERSION + " (plugin ABI " +
                                          std::to_string(KBUILD_PLUGIN_ABI_MAJOR) + "." +
                                          std::to_string(KBUILD_PLUGIN_ABI_MINOR) + ")");
    app.require_subcommand(1);
    app.fallthrough();
    app.footer("Run 'kbuild <verb> --help' for a verb's flags and an example.");

    GlobalOptions global;
    app.add_option("--plugin-dir", global.plugin_dirs,
                   "Load plugins from DIR (repeatable; replaces the default search path)")
        ->type_name("DIR");
    auto* verbose = app.add_flag("-v,--verbose", global.verbose, "Log debug detail");
    app.add_flag("-q,--quiet", global.quiet, "Log only warnings and errors")->excludes(verbose);

    std::string output = "table";
    auto* plugins = app.add_subcommand("plugins", "List loaded plugins and the ones refused");
    plugins->add_option("--output", output, "table (default) or json")
        ->check(CLI::IsMember({"table", "json"}));
    plugins->footer("Example:\n  kbuild plugins --plugin-dir ./build/lib/kbuild --output json");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11 reads an unknown verb as a stray argument; name it instead.
        if (app.get_subcommands().empty() && !app.remaining().empty()) {
            std::vector<std::string> verbs;
            for (const auto* sub : app.get_subcommands({})) verbs.push_back(sub->get_name());
            std::cerr << "error: unknown verb '" << app.remaining().front()
                      << "' (verbs: " << join(verbs, ", ") << ")\n";
            return kExitUsage;
        }
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitUsage;
    }

    setup_logging(global.quiet     ? Verbosity::quiet
                  : global.verbose ? Verbosity::verbose
                                   : Verbosity::normal);
    try {
        if (plugins->parsed()) return plugins_verb(global, output);
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return kExitFailed;
    }
    return kExitUsage;
}

}  // namespace kbuild
