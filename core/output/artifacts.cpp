#include "output/artifacts.h"

#include <algorithm>
#include <ctime>
#include <fstream>

namespace fs = std::filesystem;

namespace kbuild {

namespace {

const std::vector<std::pair<std::string, std::string>>& presets() {
    static const std::vector<std::pair<std::string, std::string>> table = {
        // sysdig's probe-builder and probe loader name the machine as `uname -m` does (ARCH=$(uname -m)).
        {"probe-builder", "{module}-{module_version}-{machine}-{kernelrelease}-{config_md5}.ko"},
        // Falco's loader asks <repository>/<driver version>/<uname -m>/<file> (falcoctl's
        // driver distro code), not Debian's name of the architecture.
        {"falco", "{module_version}/{machine}/falco_{target}_{kernelrelease}_{kernelversion}.ko"},
        {"collector", "{module_version}/collector-{kernelrelease}.ko.gz"},
        // The build service's GET path, whose architecture is canonical (x86_64, aarch64).
        {"service",
         "v1/module/{target}/{machine}/{module_version}/{kernelrelease}/{kernelversion}/"
         "{config_sha256}/{module}.ko"},
    };
    return table;
}

const std::string* field(const NamingFields& f, const std::string& name) {
    const std::pair<const char*, const std::string*> fields[] = {{"module", &f.module},
                                                                 {"module_version", &f.module_version},
                                                                 {"arch", &f.arch},
                                                                 {"kernelrelease", &f.kernelrelease},
                                                                 {"kernelversion", &f.kernelversion},
                                                                 {"config_md5", &f.config_md5},
                                                                 {"config_sha256", &f.config_sha256},
                                                                 {"target", &f.target},
                                                                 {"distro", &f.distro},
                                                                 {"variant", &f.variant},
                                                                 {"machine", &f.machine}};
    for (const auto& [key, value] : fields)
        if (name == key) return value;
    return nullptr;
}

// Renders `naming`; with `check`, only validates (fields hold their own names).
std::string render(const std::string& naming, const NamingFields& fields, bool check) {
    std::string out;
    for (size_t i = 0; i < naming.size(); ++i) {
        if (naming[i] != '{') {
            if (naming[i] == '}') throw Error("naming template " + naming + ": a '}' with no '{'");
            out += naming[i];
            continue;
        }
        const size_t close = naming.find('}', i);
        if (close == std::string::npos) throw Error("naming template " + naming + ": a '{' with no '}'");
        const std::string name = naming.substr(i + 1, close - i - 1);
        const std::string* value = field(fields, name);
        if (value == nullptr)
            throw Error("naming template " + naming + ": no field {" + name +
                        "} (fields: module, module_version, arch, kernelrelease, kernelversion, config_md5, "
                        "config_sha256, target, distro, variant, machine)");
        std::string text = check ? name : *value;
        for (char& c : text)
            if (c == '/' || c == '\0') c = '_';
        out += text;
        i = close;
    }
    if (out.empty() || out.front() == '/') throw Error("naming template " + naming + ": not a relative path");
    for (size_t start = 0; start <= out.size();) {
        const size_t slash = std::min(out.find('/', start), out.size());
        const std::string part = out.substr(start, slash - start);
        if (part.empty() || part == "." || part == "..")
            throw Error("naming template " + naming + ": the path " + out + " has an empty, '.' or '..' part");
        start = slash + 1;
    }
    return out;
}

}  // namespace

std::string machine_of(const std::string& arch) {
    if (arch == "amd64") return "x86_64";
    if (arch == "arm64") return "aarch64";
    return arch;
}

std::string naming_preset(const std::string& name) {
    for (const auto& [key, naming] : presets())
        if (key == name) return naming;
    return "";
}

std::vector<std::string> naming_presets() {
    std::vector<std::string> names;
    for (const auto& entry : presets()) names.push_back(entry.first);
    return names;
}

void check_naming_template(const std::string& naming) {
    render(naming, {}, /*check=*/true);
}

std::string artifact_name(const std::string& naming, const NamingFields& fields) {
    return render(naming, fields, /*check=*/false);
}

namespace {
constexpr std::pair<TargetStatus, const char*> kStatusWords[] = {
    {TargetStatus::queued, "queued"}, {TargetStatus::building, "building"},
    {TargetStatus::built, "built"},   {TargetStatus::skipped, "skipped"},
    {TargetStatus::failed, "failed"}, {TargetStatus::unavailable, "unavailable"},
};
}  // namespace

const char* to_string(TargetStatus status) {
    for (const auto& [s, word] : kStatusWords)
        if (s == status) return word;
    return "?";
}

std::optional<TargetStatus> target_status(std::string_view text) {
    for (const auto& [s, word] : kStatusWords)
        if (text == word) return s;
    return std::nullopt;
}

void to_json(Json& j, TargetStatus status) {
    j = to_string(status);
}

void from_json(const Json& j, TargetStatus& status) {
    const std::string text = j.get<std::string>();
    const auto known = target_status(text);
    if (!known) throw Error("unknown status '" + text + "'");
    status = *known;
}

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

std::vector<TargetRecord> read_index(const fs::path& file) {
    std::ifstream in(file);
    if (!in) throw Error(file.string() + ": cannot read");
    const Json doc = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object() || !doc.contains("targets") || !doc["targets"].is_array())
        throw Error(file.string() + ": not a kbuild index");
    try {
        return doc["targets"].get<std::vector<TargetRecord>>();
    } catch (const Json::exception& e) {
        throw Error(file.string() + ": not a kbuild index: " + e.what());
    }
}

Index::Index(fs::path out_dir) : out_dir_(std::move(out_dir)), path_(out_dir_ / "index.json") {
    if (!fs::exists(path_)) return;
    try {
        records_ = read_index(path_);
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + " (move it away to start a new one)");
    }
}

std::optional<TargetRecord> Index::find(const TargetRecord& target) const {
    std::lock_guard lock(mutex_);
    for (const auto& r : records_)
        if (target_key(r) == target_key(target)) return r;
    return std::nullopt;
}

void Index::put(const TargetRecord& record) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(records_.begin(), records_.end(),
                           [&](const TargetRecord& r) { return target_key(r) == target_key(record); });
    if (it != records_.end())
        *it = record;
    else
        records_.push_back(record);
    std::sort(records_.begin(), records_.end(),
              [](const TargetRecord& a, const TargetRecord& b) { return target_key(a) < target_key(b); });
    save_locked();
}

std::vector<TargetRecord> Index::records() const {
    std::lock_guard lock(mutex_);
    return records_;
}

void Index::save_locked() const {
    fs::create_directories(out_dir_);
    const fs::path temporary = path_.string() + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << Json{{"schema", kSchema}, {"targets", records_}}.dump(2) << '\n';
        if (!out) throw Error(temporary.string() + ": cannot write");
    }
    fs::rename(temporary, path_);
}

}  // namespace kbuild
