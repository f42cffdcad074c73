#include "app/config.h"

#include "serve/serve.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

// The config file, parsed once per read, and where its parts are for messages.
struct Config {
    fs::path file;
    toml::table root;

    // "<file>:<line>:<column>: " for a key or value (its start), "<file>: " when toml++ has no
    // position for it.
    std::string at(const toml::source_region& where) const {
        if (where.begin.line == 0) return file.string() + ": ";
        return file.string() + ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column) + ": ";
    }

    // The table named `name` at the top, nullptr when the file has none.
    const toml::table* table(const std::string& name) const { return root[name].as_table(); }
};

// Throws E ("<file>:<line>:<column>: <cause>") on a syntax error.
template <typename E>
Config read_config(const fs::path& file) {
    Config config{file, {}};
    try {
        config.root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        throw E(config.at(e.source()) + std::string(e.description()));
    }
    return config;
}

// A value that is one string, or strings in an array; nullopt for anything else.
std::optional<std::vector<std::string>> strings(const toml::node& value) {
    if (const auto* one = value.as_string()) return std::vector<std::string>{one->get()};
    const auto* array = value.as_array();
    if (array == nullptr) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& item : *array) {
        const auto* text = item.as_string();
        if (text == nullptr) return std::nullopt;
        out.push_back(text->get());
    }
    return out;
}

// A value as the config's author wrote it, for messages.
std::string shown(const toml::node& value) {
    if (const auto* text = value.as_string()) return text->get();
    std::ostringstream out;
    value.visit([&](const auto& node) { out << node; });
    return out.str();
}

long long number(const Config& c, const toml::key& key, const toml::node& value, long long min) {
    const std::string where = c.at(value.source()) + "[serve] " + std::string(key.str());
    std::string written;
    if (const auto* whole = value.as_integer()) {
        if (whole->get() >= min) return whole->get();
        written = std::to_string(whole->get());
    } else if (const auto* text = value.as_string()) {
        written = text->get();
        try {
            size_t used = 0;
            const long long parsed = std::stoll(written, &used);
            if (used == written.size() && parsed >= min) return parsed;
        } catch (const std::exception&) {}
    } else {
        throw UsageError(where + ": expected one number");
    }
    throw UsageError(where + ": '" + written + "' is not a whole number of at least " + std::to_string(min));
}

std::string text(const Config& c, const std::string& table, const toml::key& key, const toml::node& value,
                 const std::string& what = "string") {
    const auto* one = value.as_string();
    if (one == nullptr)
        throw UsageError(c.at(value.source()) + "[" + table + "] " + std::string(key.str()) + ": expected one " + what);
    return one->get();
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
    const Config c = read_config<Error>(file);
    const toml::table* table = c.table(target.distro);
    if (table == nullptr) return;
    std::set<std::string> given_keys;
    for (const auto& pair : target.plugin_options) given_keys.insert(pair.substr(0, pair.find('=')));
    const bool mirrors_given = !target.mirrors.empty();
    const std::string in_table = "[" + target.distro + "] ";
    for (const auto& entry : *table) {
        const toml::node& value = entry.second;  // named: a lambda cannot capture a structured binding before C++20
        const std::string name(entry.first.str());
        const auto list = [&] {
            auto items = strings(value);
            if (!items)
                throw Error(c.at(value.source()) + in_table + name + ": expected a string or an array of strings");
            return *items;
        };
        if (name == "mirror") {
            const auto mirrors = list();
            if (!mirrors_given) target.mirrors.insert(target.mirrors.end(), mirrors.begin(), mirrors.end());
        } else if (name == "option") {
            for (const auto& pair : list()) {
                const std::string option = pair.substr(0, pair.find('='));
                if (given_keys.count(option)) continue;
                target.plugin_options.push_back(pair);
                target.option_files[option] = file.string();
            }
        } else if (name == "keyring") {
            const auto keyrings = list();
            target.distro_keyrings.insert(target.distro_keyrings.end(), keyrings.begin(), keyrings.end());
        } else if (name == "mirror-keyring") {
            for (const auto& pair : list()) {
                const std::size_t eq = pair.rfind('=');
                if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size())
                    throw Error(c.at(value.source()) + in_table + "mirror-keyring: '" + pair + "' is not URL=KEYRING");
                target.mirror_keyrings.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
            }
        } else if (name == "verify") {
            // A TOML boolean; the words in a string are taken too, as before.
            const auto* flag = value.as_boolean();
            const auto* word = value.as_string();
            if (flag != nullptr)
                target.verify = flag->get();
            else if (word != nullptr && (word->get() == "true" || word->get() == "false"))
                target.verify = word->get() == "true";
            else
                throw Error(c.at(value.source()) + in_table + "verify: '" + shown(value) + "' is not true or false");
        } else {
            throw Error(c.at(entry.first.source()) + in_table + name +
                        ": unknown key (mirror, option, keyring, mirror-keyring and verify are known)");
        }
    }
}

std::optional<std::string> read_cache_config(const fs::path& file) {
    const Config c = read_config<Error>(file);
    const toml::table* table = c.table("cache");
    if (table == nullptr) return std::nullopt;
    std::optional<std::string> max;
    for (const auto& [key, value] : *table) {
        const std::string name(key.str());
        if (name != "max") throw Error(c.at(key.source()) + "[cache] " + name + ": unknown key (max is known)");
        const auto* text = value.as_string();
        if (text == nullptr) throw Error(c.at(value.source()) + "[cache] max: expected a size such as \"50G\"");
        max = text->get();
    }
    return max;
}

std::optional<SignFiles> read_sign_config(const fs::path& file) {
    const Config c = read_config<Error>(file);
    const toml::table* table = c.table("sign");
    if (table == nullptr) return std::nullopt;
    SignFiles sign;
    for (const auto& [key, value] : *table) {
        const std::string name(key.str());
        if (name != "key" && name != "cert")
            throw Error(c.at(key.source()) + "[sign] " + name + ": unknown key (key and cert are known)");
        const auto* text = value.as_string();
        if (text == nullptr) throw Error(c.at(value.source()) + "[sign] " + name + ": expected one path");
        fs::path path = text->get();
        if (path.is_relative()) path = file.parent_path() / path;
        (name == "key" ? sign.key : sign.cert) = path.string();
    }
    if (sign.key.empty() && sign.cert.empty()) return std::nullopt;
    if (sign.key.empty() || sign.cert.empty())
        throw Error(file.string() + ": [sign] names " + (sign.key.empty() ? "cert" : "key") + " without " +
                    (sign.key.empty() ? "key" : "cert") + ": both, or neither");
    return sign;
}

void read_serve_config(const fs::path& file, ServeSettings& s) {
    const Config c = read_config<UsageError>(file);
    const toml::table none;
    const toml::table* table = c.table("serve");
    std::map<std::string, ModuleSource> modules;
    for (const auto& m : s.modules) modules[m.name] = m;
    for (const auto& [key, value] : table != nullptr ? *table : none) {
        const std::string k(key.str());
        if (k == "modules" && value.is_table()) {
            for (const auto& [module_key, module_value] : *value.as_table()) {
                const std::string module_name(module_key.str());
                const std::string in_table = "serve.modules." + module_name;
                const auto* fields = module_value.as_table();
                if (fields == nullptr)
                    throw UsageError(c.at(module_key.source()) + "[serve.modules] " + module_name +
                                     ": expected a table ([serve.modules." + module_name + "])");
                ModuleSource& m = modules[module_name];
                m.name = module_name;
                for (const auto& [field, field_value] : *fields) {
                    const std::string f(field.str());
                    if (f == "path")
                        m.path = text(c, in_table, field, field_value);
                    else if (f == "version")
                        m.version = text(c, in_table, field, field_value);
                    else
                        throw UsageError(c.at(field.source()) + "[" + in_table + "] " + f +
                                         ": unknown key (path and version are known)");
                }
            }
            continue;
        }
        if (value.is_table())
            throw UsageError(c.at(key.source()) + "[serve] " + k + ": unknown table (modules.NAME is known)");
        if (k == "listen")
            s.listen = text(c, "serve", key, value);
        else if (k == "out")
            s.out = text(c, "serve", key, value);
        else if (k == "builder")
            s.builder = text(c, "serve", key, value);
        else if (k == "token_file")
            s.token_file = text(c, "serve", key, value);
        else if (k == "jobs")
            s.jobs = static_cast<int>(number(c, key, value, 1));
        else if (k == "queue")
            s.queue = static_cast<int>(number(c, key, value, 1));
        else if (k == "build_timeout")
            s.build_timeout = std::chrono::seconds(number(c, key, value, 1));
        else if (k == "max_body")
            s.max_body = static_cast<std::size_t>(number(c, key, value, 1024));
        else if (k == "posts_per_minute")
            s.posts_per_minute = static_cast<int>(number(c, key, value, 0));
        else if (k == "posts_per_minute_total")
            s.posts_per_minute_total = static_cast<int>(number(c, key, value, 0));
        else if (k == "request_timeout")
            s.request_timeout = std::chrono::seconds(number(c, key, value, 1));
        else if (k == "max_threads")
            s.max_threads = static_cast<int>(number(c, key, value, 2));
        else if (k == "max_connections")
            s.max_connections = static_cast<int>(number(c, key, value, 16));
        else if (k == "max_failed")
            s.max_failed = static_cast<std::size_t>(number(c, key, value, 0));
        else if (k == "shutdown_grace")
            s.shutdown_grace = std::chrono::seconds(number(c, key, value, 0));
        else if (k == "retry_failed_after")
            s.retry_failed_after = std::chrono::seconds(number(c, key, value, 0));
        else if (k == "crawl_ttl")
            s.crawl_ttl = std::chrono::seconds(number(c, key, value, 0));
        else if (k == "build_types") {
            const auto types = strings(value);
            if (!types)
                throw UsageError(c.at(value.source()) +
                                 "[serve] build_types: expected a string or an array of strings");
            s.build_types = *types;
        } else if (k == "sign_key" || k == "sign_cert") {
            fs::path path = text(c, "serve", key, value);
            if (path.is_relative()) path = file.parent_path() / path;
            (k == "sign_key" ? s.sign_key : s.sign_cert) = path.string();
        } else
            throw UsageError(c.at(key.source()) + "[serve] " + k + ": unknown key");
    }
    s.modules.clear();
    for (auto& [name, m] : modules) {
        if (!m.path.empty() && m.path.is_relative()) m.path = file.parent_path() / m.path;
        s.modules.push_back(m);
    }
}

}  // namespace kbuild
