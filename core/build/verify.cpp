#include "build/verify.h"

#include "kernel/kernel_arch.h"

#include <kbuild/error.hpp>

#include <elf.h>

#include <cstring>
#include <fstream>
#include <vector>

namespace kbuild {
namespace {

template <class Ehdr, class Shdr>
std::string modinfo_section(const std::vector<char>& image, const std::string& file) {
    auto fail = [&](const std::string& why) { return Error(file + ": " + why); };
    if (image.size() < sizeof(Ehdr)) throw fail("truncated ELF header");
    Ehdr header;
    std::memcpy(&header, image.data(), sizeof header);
    const size_t table_end = header.e_shoff + size_t{header.e_shnum} * sizeof(Shdr);
    if (header.e_shoff == 0 || header.e_shentsize != sizeof(Shdr) || table_end > image.size())
        throw fail("section table is missing or lies past the end of the file");
    std::vector<Shdr> sections(header.e_shnum);
    std::memcpy(sections.data(), image.data() + header.e_shoff, header.e_shnum * sizeof(Shdr));
    if (header.e_shstrndx >= sections.size()) throw fail("bad section name table index");
    const Shdr& names = sections[header.e_shstrndx];
    if (names.sh_offset + names.sh_size > image.size()) throw fail("section names lie past the end");
    for (const Shdr& section : sections) {
        if (section.sh_name >= names.sh_size) continue;
        const char* name = image.data() + names.sh_offset + section.sh_name;
        const size_t room = names.sh_size - section.sh_name;
        if (strnlen(name, room) == room || std::strcmp(name, ".modinfo") != 0) continue;
        if (section.sh_offset + section.sh_size > image.size()) throw fail(".modinfo lies past the end of the file");
        return std::string(image.data() + section.sh_offset, section.sh_size);
    }
    throw fail("no .modinfo section (not a kernel module)");
}

}  // namespace

std::map<std::string, std::string> read_modinfo(const std::filesystem::path& ko) {
    const std::string file = ko.string();
    std::ifstream in(ko, std::ios::binary);
    if (!in) throw Error(file + ": cannot open");
    std::vector<char> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (image.size() < EI_NIDENT || std::memcmp(image.data(), ELFMAG, SELFMAG) != 0)
        throw Error(file + ": not an ELF file");
    const std::string section = image[EI_CLASS] == ELFCLASS64 ? modinfo_section<Elf64_Ehdr, Elf64_Shdr>(image, file)
                                                              : modinfo_section<Elf32_Ehdr, Elf32_Shdr>(image, file);
    std::map<std::string, std::string> info;
    size_t start = 0;
    while (start < section.size()) {
        size_t end = section.find('\0', start);
        if (end == std::string::npos) end = section.size();
        const std::string entry = section.substr(start, end - start);
        const size_t eq = entry.find('=');
        if (eq != std::string::npos) info.emplace(entry.substr(0, eq), entry.substr(eq + 1));
        start = end + 1;
    }
    return info;
}

void check_vermagic(const std::map<std::string, std::string>& modinfo, const std::string& release,
                    const std::string& arch) {
    const auto it = modinfo.find("vermagic");
    if (it == modinfo.end()) throw Error("module has no vermagic");
    const std::string& vermagic = it->second;
    const bool matches = vermagic.compare(0, release.size(), release) == 0 &&
                         (vermagic.size() == release.size() || vermagic[release.size()] == ' ');
    if (!matches) throw Error("vermagic '" + vermagic + "' does not match kernel " + release);
    // arm64's MODULE_ARCH_VERMAGIC; x86's names the CPU family only when the config picks one.
    if (arch == "arm64" && (" " + vermagic + " ").find(" aarch64 ") == std::string::npos)
        throw Error("vermagic '" + vermagic + "' lacks arm64's \"aarch64\": the module was not built for arm64");
}

void check_module_machine(const std::filesystem::path& ko, const std::string& arch) {
    if (arch.empty()) return;
    const std::uint16_t machine = elf_machine(ko);
    const std::string is = arch_of_elf_machine(machine);
    if (is != arch)
        throw Error("an ELF file for " + is + " (machine " + std::to_string(machine) + "), not for the kernel's " +
                    arch);
}

}  // namespace kbuild
