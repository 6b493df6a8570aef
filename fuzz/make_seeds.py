"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/) from PySOA 1.4.9's golden vectors in
../shared/vectors: `python3 fuzz/make_seeds.py [path/to/vectors]`. Standard library only; the files are committed,
and `cargo xtask fuzz` gives libFuzzer each target's seeds beside its working corpus."""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', '..', 'shared', 'vectors')


def load(name):
    with open(os.path.join(VECTORS, name)) as f:
        return json.load(f)


def write(target, data):
    folder = os.path.join(HERE, 'seeds', target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()[:16]), 'wb') as f:
        f.write(data)


def walk_hex(node):
    """Every `hex` or `*_hex` string in a vector file, decoded."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (key == 'hex' or key.endswith('_hex')):
                try:
                    yield key, bytes.fromhex(value)
                except ValueError:
                    pass
            else:
                yield from walk_hex(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_hex(item)


def main():
    for _, data in walk_hex(load('msgpack_values.json')):
        write('msgpack_decode', data)
    for _, data in walk_hex(load('msgpack_errors.json')):
        write('msgpack_decode', data)
    for value in load('json_values.json')['values']:
        if 'text' in value:
            write('json_decode', value['text'].encode())
    for key, data in walk_hex(load('header_parsing.json')):
        if key == 'frame_hex':
            write('frame_parse', data)
    frames = load('transport_frames.json')
    for key, data in walk_hex(frames):
        if key == 'hex' and data.startswith(b'pysoa-redis/'):
            write('frame_parse', data)
            payload = data[data.index(b';', data.index(b'content-type')) + 1:]
            if b'application/json' in data[:80]:
                write('json_decode', payload)
            else:
                write('msgpack_decode', payload)
                # The job request: the envelope's body, cut out of the MessagePack map by its key.
                at = payload.find(b'\xa4body')
                if at > 0 and b'"' not in payload[:1]:
                    write('job_validate', payload[at + 5:])


if __name__ == '__main__':
    main()
    for target in sorted(os.listdir(os.path.join(HERE, 'seeds'))):
        print(target, len(os.listdir(os.path.join(HERE, 'seeds', target))))
