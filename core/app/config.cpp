#include "app/config.h"

#include "serve/serve.h"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <map>
#include <set>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

long long number(const CLI::ConfigItem& item, const fs::path& file, long long min) {
    const std::string where = file.string() + ": [serve] " + item.name;
    if (item.inputs.size() != 1) throw UsageError(where + ": expected one number");
    try {
        size_t used = 0;
        const long long value = std::stoll(item.inputs[0], &used);
        if (used != item.inputs[0].size() || value < min) throw std::invalid_argument("range");
        return value;
    } catch (const std::exception&) {
        throw UsageError(where + ": '" + item.inputs[0] + "' is not a whole number of at least " +
                         std::to_string(min));
    }
}

std::string text(const CLI::ConfigItem& item, const fs::path& file) {
    if (item.inputs.size() != 1)
        throw UsageError(file.string() + ": [serve] " + item.name + ": expected one string");
    return item.inputs[0];
}

}  // namespace


std::optional<fs::path> config_file(const std::string& given) {
    if (!given.empty()) {
        if (!fs::is_regular_file(given)) throw Error(given + ": no such config file");
        return fs::path(given);
    }
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("KBUILD_CONFIG"); env && *env) candidates.emplace_back(env);
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
        candidates.push_back(fs::path(xdg) / "kbuild/config.toml");
    else if (const char* home = std::getenv("HOME"); home && *home)
        candidates.push_back(fs::path(home) / ".config/kbuild/config.toml");
    candidates.emplace_back("/etc/kbuild/config.toml");
    // An install into a prefix puts its config in <prefix>/etc/kbuild (packaging/CMakeLists.txt).
    std::error_code ec;
    if (const fs::path exe = fs::read_symlink("/proc/self/exe", ec); !ec)
        candidates.push_back(exe.parent_path().parent_path() / "etc/kbuild/config.toml");
    for (const auto& c : candidates)
        if (fs::is_regular_file(c)) return c;
    return std::nullopt;
}

void apply_config(const fs::path& file, TargetOptions& target) {
    std::vector<CLI::ConfigItem> items;
    try {
        items = CLI::ConfigTOML().from_file(file.string());
    } catch (const CLI::Error& e) {
        throw Error(file.string() + ": " + e.what());
    }
    std::set<std::string> given_keys;
    for (const auto& pair : target.plugin_options) given_keys.insert(pair.substr(0, pair.find('=')));
    const bool mirrors_given = !target.mirrors.empty();
    for (const auto& item : items) {
        // CLI11 reports each table's opening as an item named "++" (and its end as "--").
        if (item.parents.size() != 1 || item.parents[0] != target.distro || item.name == "++" ||
            item.name == "--")
            continue;
        if (item.name == "mirror") {
            if (!mirrors_given) target.mirrors.insert(target.mirrors.end(), item.inputs.begin(), item.inputs.end());
        } else if (item.name == "option") {
            for (const auto& pair : item.inputs) {
                const std::string key = pair.substr(0, pair.find('='));
                if (given_keys.count(key)) continue;
                target.plugin_options.push_back(pair);
                target.option_files[key] = file.string();
            }
        } else if (item.name == "keyring") {
            target.distro_keyrings.insert(target.distro_keyrings.end(), item.inputs.begin(), item.inputs.end());
        } else if (item.name == "mirror-keyring") {
            for (const auto& pair : item.inputs) {
                const std::size_t eq = pair.rfind('=');
                if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size())
                    throw Error(file.string() + ": [" + target.distro + "] mirror-keyring: '" + pair +
                                "' is not URL=KEYRING");
                target.mirror_keyrings.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
            }
        } else if (item.name == "verify") {
            const std::string value = item.inputs.empty() ? "" : item.inputs.front();
            if (value != "true" && value != "false")
                throw Error(file.string() + ": [" + target.distro + "] verify: '" + value + "' is not true or false");
            target.verify = value == "true";
        } else {
            throw Error(file.string() + ": [" + target.distro + "] " + item.name +
                        ": unknown key (mirror, option, keyring, mirror-keyring and verify are known)");
        }
    }
}

std::optional<SignFiles> read_sign_config(const fs::path& file) {
    std::vector<CLI::ConfigItem> items;
    try {
        items = CLI::ConfigTOML().from_file(file.string());
    } catch (const CLI::Error& e) {
        throw Error(file.string() + ": " + e.what());
    }
    SignFiles sign;
    for (const auto& item : items) {
        if (item.parents.size() != 1 || item.parents[0] != "sign" || item.name == "++" || item.name == "--") continue;
        if (item.inputs.size() != 1)
            throw Error(file.string() + ": [sign] " + item.name + ": expected one path");
        fs::path path = item.inputs[0];
        if (path.is_relative()) path = file.parent_path() / path;
        if (item.name == "key") sign.key = path.string();
        else if (item.name == "cert") sign.cert = path.string();
        else throw Error(file.string() + ": [sign] " + item.name + ": unknown key (key and cert are known)");
    }
    if (sign.key.empty() && sign.cert.empty()) return std::nullopt;
    if (sign.key.empty() || sign.cert.empty())
        throw Error(file.string() + ": [sign] names " + (sign.key.empty() ? "cert" : "key") + " without " +
                    (sign.key.empty() ? "key" : "cert") + ": both, or neither");
    return sign;
}

void read_serve_config(const fs::path& file, ServeSettings& s) {
    std::vector<CLI::ConfigItem> items;
    try {
        items = CLI::ConfigTOML().from_file(file.string());
    } catch (const CLI::Error& e) {
        throw UsageError(file.string() + ": " + e.what());
    }
    std::map<std::string, ModuleSource> modules;
    for (const auto& m : s.modules) modules[m.name] = m;
    for (const auto& item : items) {
        if (item.parents.empty() || item.parents[0] != "serve" || item.name == "++" || item.name == "--") continue;
        if (item.parents.size() == 3 && item.parents[1] == "modules") {
            ModuleSource& m = modules[item.parents[2]];
            m.name = item.parents[2];
            if (item.name == "path") m.path = text(item, file);
            else if (item.name == "version") m.version = text(item, file);
            else throw UsageError(file.string() + ": [serve.modules." + m.name + "] " + item.name +
                                  ": unknown key (path and version are known)");
            continue;
        }
        if (item.parents.size() != 1)
            throw UsageError(file.string() + ": [serve] " + item.name + ": unknown table (modules.NAME is known)");
        const std::string& k = item.name;
        if (k == "listen") s.listen = text(item, file);
        else if (k == "out") s.out = text(item, file);
        else if (k == "builder") s.builder = text(item, file);
        else if (k == "token_file") s.token_file = text(item, file);
        else if (k == "jobs") s.jobs = static_cast<int>(number(item, file, 1));
        else if (k == "queue") s.queue = static_cast<int>(number(item, file, 1));
        else if (k == "build_timeout") s.build_timeout = std::chrono::seconds(number(item, file, 1));
        else if (k == "max_body") s.max_body = static_cast<std::size_t>(number(item, file, 1024));
        else if (k == "posts_per_minute") s.posts_per_minute = static_cast<int>(number(item, file, 0));
        else if (k == "request_timeout") s.request_timeout = std::chrono::seconds(number(item, file, 1));
        else if (k == "max_threads") s.max_threads = static_cast<int>(number(item, file, 2));
        else if (k == "shutdown_grace") s.shutdown_grace = std::chrono::seconds(number(item, file, 0));
        else if (k == "retry_failed_after") s.retry_failed_after = std::chrono::seconds(number(item, file, 0));
        else if (k == "crawl_ttl") s.crawl_ttl = std::chrono::seconds(number(item, file, 0));
        else if (k == "build_types") s.build_types = item.inputs;
        else if (k == "sign_key" || k == "sign_cert") {
            fs::path path = text(item, file);
            if (path.is_relative()) path = file.parent_path() / path;
            (k == "sign_key" ? s.sign_key : s.sign_cert) = path.string();
        }
        else
            throw UsageError(file.string() + ": [serve] " + k + ": unknown key");
    }
    s.modules.clear();
    for (auto& [name, m] : modules) {
        if (!m.path.empty() && m.path.is_relative()) m.path = file.parent_path() / m.path;
        s.modules.push_back(m);
    }
}

}  // namespace kbuild
