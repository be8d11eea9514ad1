"""Print the size of each built Lambda bootstrap and of the zip Lambda would receive.

The zip is made in memory with the default deflate level, as cargo-lambda and the CDK do.
Usage: python3 tools/lambda-sizes.py target/lambda/*/bootstrap
"""
import io
import os
import sys
import zipfile

for path in sys.argv[1:]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            archive.writestr(info, f.read())
    name = os.path.basename(os.path.dirname(path))
    size = os.path.getsize(path)
    zipped = len(buffer.getvalue())
    print(f"{name:22} bootstrap {size / 1e6:6.2f} MB  zip {zipped / 1e6:6.2f} MB")
