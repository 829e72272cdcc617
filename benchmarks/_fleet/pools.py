"""Hardware and software the fleet is drawn from: GPUs with their driver builds, machines,
phones, corporate images, fonts (only those the agent probes), screens and languages."""

from __future__ import annotations

import random
from typing import NamedTuple


class Gpu(NamedTuple):
    vendor: str  # NVIDIA, Intel, AMD, Apple, Qualcomm, ARM, Samsung, Imagination
    name: str
    pci: str = ""  # Windows: ANGLE shows the PCI device id
    chip: str = ""  # Linux Mesa: the chip code in the renderer string
    rename: str = ""  # the name the in-window driver build reports instead


# Driver builds per (OS, vendor), oldest first: the last one is released inside the window.
DRIVERS = {
    ("Windows", "NVIDIA"): ("546.33", "551.86", "556.12", "560.94", "566.36", "572.83", "576.88",
                            "581.57", "582.28"),
    ("Windows", "Intel"): ("31.0.101.4953", "31.0.101.5186", "31.0.101.5445", "31.0.101.5590",
                           "32.0.101.6078", "32.0.101.6325", "32.0.101.6734", "32.0.101.6987",
                           "32.0.101.7076"),
    ("Windows", "AMD"): ("23.12.1", "24.3.1", "24.5.1", "24.8.1", "24.12.1", "25.3.1", "25.6.1",
                         "25.9.1", "25.10.2"),
    ("Linux", "NVIDIA"): ("535.183.01", "545.29.06", "550.120", "555.58.02", "560.35.03",
                          "565.77", "570.144", "575.64.05", "580.95.05"),
    ("Linux", "Intel"): ("23.2.1", "23.3.6", "24.0.9", "24.1.7", "24.2.8", "24.3.4", "25.0.7",
                         "25.2.3", "25.2.6"),  # Mesa
}  # fmt: skip
DRIVERS[("Linux", "AMD")] = DRIVERS[("Linux", "Intel")]
# A device's build before the window: recent builds are the most common.
DRIVER_AGE_WEIGHTS = (0.04, 0.05, 0.07, 0.09, 0.12, 0.16, 0.2, 0.27)

WINDOWS_GPUS = (
    (Gpu("Intel", "Intel(R) UHD Graphics 620", "0x00005917"), 0.12),
    (Gpu("Intel", "Intel(R) Iris(R) Xe Graphics", "0x00009A49"), 0.16),
    (Gpu("Intel", "Intel(R) UHD Graphics", "0x00009A78", rename="Intel(R) Graphics"), 0.08),
    (Gpu("Intel", "Intel(R) UHD Graphics 630", "0x00003E92"), 0.06),
    (Gpu("AMD", "AMD Radeon(TM) Graphics", "0x00001638", rename="AMD Radeon(TM) 680M"), 0.07),
    (Gpu("AMD", "AMD Radeon RX 6600", "0x000073FF"), 0.03),
    (Gpu("AMD", "AMD Radeon RX 7600", "0x00007480"), 0.02),
    (Gpu("NVIDIA", "NVIDIA GeForce GTX 1650", "0x00001F99"), 0.08),
    (Gpu("NVIDIA", "NVIDIA GeForce RTX 3050 Laptop GPU", "0x000025A2"), 0.06),
    (Gpu("NVIDIA", "NVIDIA GeForce RTX 3060", "0x00002504"), 0.09),
    (Gpu("NVIDIA", "NVIDIA GeForce RTX 3070", "0x00002484"), 0.04),
    (Gpu("NVIDIA", "NVIDIA GeForce RTX 4060", "0x00002882"), 0.08),
    (Gpu("NVIDIA", "NVIDIA GeForce RTX 4060 Laptop GPU", "0x000028E0"), 0.06),
    (Gpu("NVIDIA", "NVIDIA GeForce RTX 4070", "0x00002786"), 0.05),
)
LINUX_GPUS = (
    (Gpu("Intel", "Intel(R) UHD Graphics 620", chip="KBL GT2"), 0.3),
    (Gpu("Intel", "Intel(R) Xe Graphics", chip="TGL GT2"), 0.25),
    (Gpu("AMD", "AMD Radeon Graphics", chip="renoir"), 0.15),
    (Gpu("AMD", "AMD Radeon RX 6700 XT", chip="navi22"), 0.1),
    (Gpu("NVIDIA", "NVIDIA GeForce RTX 3070"), 0.2),
)


class Mac(NamedTuple):
    gpu: str
    cores: int
    screen: tuple[int, int, float]  # CSS width, height, device pixel ratio
    laptop: bool


MACS = (
    (Mac("Apple M1", 8, (1440, 900, 2.0), True), 0.18),
    (Mac("Apple M2", 8, (1470, 956, 2.0), True), 0.18),
    (Mac("Apple M3", 8, (1470, 956, 2.0), True), 0.12),
    (Mac("Apple M3 Pro", 11, (1512, 982, 2.0), True), 0.1),
    (Mac("Apple M4", 10, (1512, 982, 2.0), True), 0.1),
    (Mac("Apple M1 Pro", 10, (1728, 1117, 2.0), True), 0.08),
    (Mac("Apple M3", 8, (2240, 1260, 2.0), False), 0.06),  # iMac
    (Mac("Apple M2", 8, (2560, 1440, 1.0), False), 0.08),  # Mac mini on a monitor
)
LAPTOP_PANELS = (
    ((1536, 864, 1.25), 0.3), ((1280, 720, 1.5), 0.12), ((1366, 768, 1.0), 0.1),
    ((1536, 960, 1.25), 0.2), ((1707, 1067, 1.5), 0.12), ((1920, 1080, 1.0), 0.16),
)  # fmt: skip
MONITORS = (
    ((1920, 1080, 1.0), 0.45), ((2560, 1440, 1.0), 0.25), ((2560, 1440, 1.5), 0.08),
    ((1920, 1200, 1.0), 0.08), ((3440, 1440, 1.0), 0.06), ((1680, 1050, 1.0), 0.08),
)  # fmt: skip
PC_CORES = (
    (4, 0.08), (6, 0.08), (8, 0.22), (12, 0.22), (16, 0.2), (20, 0.08), (24, 0.06), (32, 0.06),
)  # fmt: skip
PC_MEMORY = ((4, 0.05), (8, 0.3), (16, 0.45), (32, 0.2))
DISKS = ((256, 0.25), (512, 0.45), (1000, 0.25), (2000, 0.05))


class Phone(NamedTuple):
    os: str  # iOS or Android
    model: str  # client-hint model code (Android)
    gpu: Gpu
    screen: tuple[int, int, float]
    cores: int
    memory: int
    android: str = ""  # platformVersion


APPLE_GPU = Gpu("Apple", "Apple GPU")
# The near-identical population: popular models, every unit running the same software.
POPULAR_PHONES = (
    (Phone("iOS", "iPhone 16", APPLE_GPU, (393, 852, 3.0), 4, 0), 0.18),
    (Phone("iOS", "iPhone 15", APPLE_GPU, (393, 852, 3.0), 4, 0), 0.15),
    (Phone("iOS", "iPhone 13", APPLE_GPU, (390, 844, 3.0), 4, 0), 0.12),
    (Phone("iOS", "iPhone 16 Pro", APPLE_GPU, (402, 874, 3.0), 4, 0), 0.08),
    (Phone("iOS", "iPhone 16 Pro Max", APPLE_GPU, (440, 956, 3.0), 4, 0), 0.07),
    (Phone("Android", "SM-S921B", Gpu("Samsung", "Samsung Xclipse 940"), (384, 832, 2.8125), 8, 8,
           "15.0.0"), 0.1),
    (Phone("Android", "Pixel 9", Gpu("ARM", "Mali-G715"), (411, 923, 2.625), 8, 8, "16.0.0"), 0.08),
    (Phone("Android", "SM-A556B", Gpu("Samsung", "Samsung Xclipse 530"), (384, 832, 2.8125), 8, 8,
           "15.0.0"), 0.12),
)  # fmt: skip
# Consumer Android phones: the long tail. 400 models (a model code each) drawn once from
# realistic parts; popularity falls off as 1/rank^0.5, so popular models still have twins.
ADRENOS = ("610", "619", "642L", "650", "660", "710", "730", "740")
ANDROID_GPUS = (
    *(("Qualcomm", f"Adreno (TM) {n}") for n in ADRENOS),
    ("ARM", "Mali-G52 MC2"), ("ARM", "Mali-G57 MC2"), ("ARM", "Mali-G68 MC4"),
    ("ARM", "Mali-G77 MC9"), ("ARM", "Mali-G610 MC6"), ("ARM", "Mali-G78"), ("ARM", "Mali-G710"),
    ("Imagination", "IMG BXM-8-256"), ("Imagination", "PowerVR Rogue GE8320"),
    ("Samsung", "Samsung Xclipse 530"), ("Samsung", "Samsung Xclipse 920"),
)  # fmt: skip
ANDROID_SCREENS = (
    (360, 800, 3.0), (384, 854, 1.875), (393, 873, 2.75), (412, 915, 2.625), (393, 851, 2.75),
    (360, 780, 3.0), (384, 832, 2.8125), (412, 892, 2.625), (360, 760, 3.0), (411, 914, 2.625),
    (384, 824, 3.75), (400, 889, 2.7),
)  # fmt: skip
ANDROID_PREFIXES = ("SM-A", "SM-M", "SM-G", "2201", "2304", "M2101", "CPH", "RMX", "V2", "XT",
                    "moto g", "TA-", "XQ-", "ANY-")  # fmt: skip


def _android_models(count: int = 400) -> tuple[tuple[Phone, float], ...]:
    rng = random.Random("android-models")
    out = []
    for rank in range(count):
        vendor, name = rng.choice(ANDROID_GPUS)
        model = f"{rng.choice(ANDROID_PREFIXES)}{rng.randrange(100, 999)}{rng.choice('BFNU0')}"
        phone = Phone("Android", model, Gpu(vendor, name), rng.choice(ANDROID_SCREENS),
                      rng.choice((8, 8, 8, 6)), rng.choice((3, 4, 6, 8, 8, 12)),
                      rng.choice(("13.0.0", "14.0.0", "15.0.0", "15.0.0", "16.0.0")))  # fmt: skip
        out.append((phone, 1 / (rank + 1) ** 0.5))
    return tuple(out)


OTHER_ANDROIDS = _android_models()


class Image(NamedTuple):
    """A corporate laptop image: one model and one software build, deployed by IT."""

    company: str
    os: str
    browser: str
    gpu: Gpu
    driver: int  # index into DRIVERS
    cores: int
    memory: int
    panel: tuple[int, int, float]
    monitor: tuple[int, int, float]  # the office's standard external monitor
    fonts: tuple[str, ...]  # added to the OS's fonts
    clear_on_exit: bool  # a policy that clears cookies and site data when the browser closes
    offices: tuple[str, ...]


IRIS_XE = WINDOWS_GPUS[1][0]
IMAGES = (
    Image("Contoso", "Windows", "Edge", IRIS_XE, 7, 12, 16, (1536, 864, 1.25), (1920, 1080, 1.0),
          (), False, ("Berlin", "London", "Madrid")),
    Image("Fabrikam", "Windows", "Chrome", IRIS_XE, 5, 12, 16, (1536, 960, 1.25),
          (2560, 1440, 1.0), ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "Liberation Mono",
                              "Liberation Sans", "Liberation Serif"), False,
          ("New York", "Chicago", "London")),
    Image("Northwind", "Windows", "Chrome", IRIS_XE, 7, 16, 32, (1536, 960, 1.25),
          (1920, 1080, 1.0), (), False, ("Paris", "Berlin", "São Paulo")),
    Image("Tailspin", "macOS", "Chrome", Gpu("Apple", "Apple M2"), 0, 8, 16, (1470, 956, 2.0),
          (2560, 1440, 1.0), ("Calibri", "Cambria", "Consolas"), False,
          ("New York", "London", "Tokyo")),
    Image("Woodgrove", "Windows", "Edge", IRIS_XE, 6, 12, 16, (1536, 960, 1.25), (1920, 1080, 1.0),
          (), True, ("Chicago", "Madrid", "Tokyo")),
)  # fmt: skip

# Fonts: only those the agent probes (agent.js FONTS) can be seen.
BASE_FONTS = {
    "Windows": ("Arial", "Arial Black", "Calibri", "Cambria", "Comic Sans MS", "Consolas",
                "Courier New", "Georgia", "Impact", "Lucida Console", "Segoe UI", "Tahoma",
                "Times New Roman", "Trebuchet MS", "Verdana"),
    "macOS": ("Arial", "Arial Black", "Comic Sans MS", "Courier New", "Georgia", "Helvetica",
              "Helvetica Neue", "Impact", "Lucida Grande", "Menlo", "Monaco", "Palatino", "Tahoma",
              "Times New Roman", "Trebuchet MS", "Verdana"),
    # fontconfig aliases Arial, Helvetica, Times and Courier to metric-compatible fonts.
    "Linux": ("Arial", "Courier New", "DejaVu Sans", "DejaVu Sans Mono", "DejaVu Serif",
              "Helvetica", "Liberation Mono", "Liberation Sans", "Liberation Serif",
              "Noto Color Emoji", "Noto Sans", "Noto Serif", "Times New Roman", "Ubuntu"),
    "Android": ("Droid Sans", "Noto Color Emoji", "Noto Sans", "Noto Serif", "Roboto"),
    "iOS": ("Arial", "Courier New", "Georgia", "Helvetica", "Helvetica Neue", "Menlo", "Palatino",
            "Times New Roman", "Trebuchet MS", "Verdana"),
}  # fmt: skip
# Packs installed together by one application, with the share of machines that have them.
FONT_PACKS = {
    "office": (("Calibri", "Cambria", "Consolas"), {"macOS": 0.35}),
    "libreoffice": (("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "Liberation Mono",
                     "Liberation Sans", "Liberation Serif"), {"Windows": 0.08, "macOS": 0.06}),
    "msttcore": (("Arial Black", "Comic Sans MS", "Georgia", "Impact", "Trebuchet MS", "Verdana"),
                 {"Linux": 0.4}),
    "google": (("Roboto", "Noto Sans", "Noto Serif"), {"Windows": 0.05, "macOS": 0.05,
                                                       "Linux": 0.05}),
}  # fmt: skip
SINGLE_FONTS = (
    "Roboto", "Ubuntu", "Noto Sans", "Helvetica", "Lucida Grande", "SF Pro Text", "FreeSans",
    "Cantarell", "Droid Sans", "Helvetica Neue", "Menlo", "Monaco",
)  # fmt: skip
PLUGINS = (
    "PDF Viewer", "Chrome PDF Viewer", "Chromium PDF Viewer", "Microsoft Edge PDF Viewer",
    "WebKit built-in PDF",
)  # fmt: skip
WEBGL_COMMON = (
    "ANGLE_instanced_arrays", "EXT_blend_minmax", "EXT_color_buffer_half_float", "EXT_float_blend",
    "EXT_frag_depth", "EXT_shader_texture_lod", "EXT_texture_filter_anisotropic", "EXT_sRGB",
    "OES_element_index_uint", "OES_standard_derivatives", "OES_texture_float",
    "OES_texture_float_linear", "OES_texture_half_float", "OES_texture_half_float_linear",
    "OES_vertex_array_object", "WEBGL_color_buffer_float", "WEBGL_debug_renderer_info",
    "WEBGL_depth_texture", "WEBGL_draw_buffers", "WEBGL_lose_context",
)  # fmt: skip
WEBGL_BY_VENDOR = {
    "desktop": ("EXT_disjoint_timer_query", "EXT_texture_compression_bptc",
                "EXT_texture_compression_rgtc", "WEBGL_compressed_texture_s3tc",
                "WEBGL_compressed_texture_s3tc_srgb", "KHR_parallel_shader_compile"),
    "mobile": ("WEBGL_compressed_texture_astc", "WEBGL_compressed_texture_etc",
               "WEBGL_compressed_texture_etc1"),
    "blink": ("EXT_clip_control", "EXT_depth_clamp", "EXT_polygon_offset_clamp",
              "EXT_texture_mirror_clamp_to_edge", "OES_fbo_render_mipmap",
              "WEBGL_blend_func_extended", "WEBGL_debug_shaders", "WEBGL_multi_draw",
              "WEBGL_polygon_mode"),
}  # fmt: skip
# What a release that changes the WebGL list adds.
WEBGL_NEW = ("WEBGL_render_shared_exponent", "WEBGL_stencil_texturing")


def languages(browser: str, primary: str) -> list[str]:
    """navigator.languages as each browser reports a user's UI language."""
    base = primary.split("-")[0]
    if browser == "Safari":
        return [primary]
    if browser == "Firefox":
        first = primary if base == "en" else base
        return [first] + [x for x in ("en-US", "en") if x != first]
    out = [primary, base] if base != "en" else [primary]
    return list(dict.fromkeys([*out, "en-US", "en"]))
