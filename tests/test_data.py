"""Hostile-input tests for the data chapters 01a-01e: archives, scan, crop_boxes, presize_cache, dataloaders
(odd archives and images, thread-safe warnings, crop boxes, presize, prepare, subsets, DataLoaders)"""
import io, os, json, shutil, tarfile, zipfile, threading, unicodedata, warnings
from pathlib import Path
import numpy as np, pytest
from PIL import Image, UnidentifiedImageError
from conftest import zip_folder
from kimchi_course.core import *
from kimchi_course.archives import *
from kimchi_course.archives import _safe_parts
from kimchi_course.scan import *
from kimchi_course.crop_boxes import *
from kimchi_course.crop_boxes import _FOLDER_BOXES
from kimchi_course.presize_cache import *
from kimchi_course.dataloaders import *
from kimchi_course.toy import make_toy_kimchi

NFD = lambda s: unicodedata.normalize('NFD', s)

pytestmark = pytest.mark.usefixtures('own_data_env') # conftest: own cache, offline Hub, no outside data source

def jpeg_bytes(w=160, h=120, color=(200, 60, 30), **kw):
    b = io.BytesIO(); Image.new('RGB', (w, h), color).save(b, 'JPEG', **kw); return b.getvalue()

def noisy(w, h, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))

def make_hostile(root:Path)->Path:
    "A kimchi folder with every kind of trouble; returns `root`"
    good = root/NFD('배추김치'); good.mkdir(parents=True)          # NFD folder name
    for i in range(4): noisy(300, 200, i).save(good/f'Img_{i}.jpg')
    (good/'zero.jpg').write_bytes(b'')
    (good/'cut.jpg').write_bytes((good/'Img_0.jpg').read_bytes()[:700])
    (good/'text.jpg').write_text('not an image')
    (good/'.DS_Store').write_bytes(b'Bud1')
    (good/'crop_area.properties').write_text('Img_0=10,20,100,50\nimg_1=1,2\nIMG_2=,5,6,7,8\n\nImg_3=words\n# comment\n')
    k = root/'깍두기'; k.mkdir()                                   # NFC folder name
    Image.new('CMYK', (200, 150), (0, 120, 200, 10)).save(k/'cmyk.jpg')
    Image.new('L', (200, 150), 90).save(k/'gray.PNG')
    Image.new('RGBA', (200, 150), (255, 0, 0, 0)).save(k/'alpha.png')
    Image.fromarray(np.full((150, 200), 50000, np.uint16)).save(k/'deep16.png')
    frames = [Image.new('RGB', (200, 150), c) for c in ('red', 'green', 'blue')]
    frames[0].save(k/'anim.GIF', save_all=True, append_images=frames[1:])
    Image.new('RGB', (200, 150), 'blue').save(k/'bitmap.BMP')
    ex = Image.new('RGB', (300, 100)).getexif(); ex[0x0112] = 6
    Image.new('RGB', (300, 100), 'green').save(k/'phone.JPEG', exif=ex)  # stored landscape, displayed portrait
    Image.new('RGB', (200, 150), 'white').save(k/'png_named.jpg', 'PNG')
    Image.new('RGB', (10, 10)).save(k/'tiny.jpg')
    b = io.BytesIO(); Image.new('RGB', (200, 150)).save(b, 'PNG'); (k/'cut.png').write_bytes(b.getvalue()[:60])
    (root/'백김치').mkdir()                                         # an empty class folder
    (root/'misc').mkdir(); noisy(100, 100).save(root/'misc'/'stray.jpg') # not a class
    (root/'__MACOSX'/'배추김치').mkdir(parents=True); (root/'__MACOSX'/'배추김치'/'._Img_0.jpg').write_bytes(b'\x00\x05')
    (root/'README.txt').write_text('hello')
    return root

@pytest.fixture
def hostile(tmp_path): return make_hostile(tmp_path/'src'/'kimchi')

def cp949_zip(path:Path, names:dict)->Path:
    "A zip whose names are stored in CP949 without the UTF-8 flag"
    src = path.parent/(path.stem + '-folder')
    for n,b in names.items(): (src/n).parent.mkdir(parents=True, exist_ok=True); (src/n).write_bytes(b)
    return zip_folder(src, path, encoding='cp949', prefix='')

# ---------------------------------------------------------------- archives
@pytest.mark.parametrize('name', ['../evil.txt', 'a/../../evil.txt', '/abs/evil.txt', 'C:/evil.txt', '..\\evil.txt', 'a\\..\\..\\evil.txt'])
def test_zip_slip_refused(tmp_path, name):
    z = tmp_path/'evil.zip'
    with zipfile.ZipFile(z, 'w') as f: f.writestr('kimchi/배추김치/a.jpg', jpeg_bytes()); f.writestr(name, b'x')
    before = z.read_bytes()
    with pytest.raises(ValueError, match='refusing'): extract_archive(z, tmp_path/'out', progress=False)
    assert not (tmp_path/'out').exists() and not (tmp_path/'evil.txt').exists() and not Path('/abs/evil.txt').exists()
    assert not list(tmp_path.glob('.out.part-*')) and z.read_bytes() == before

def test_tar_slip_and_links(tmp_path):
    t = tmp_path/'evil.tar'
    with tarfile.open(t, 'w') as f:
        i = tarfile.TarInfo('../evil.txt'); i.size = 1; f.addfile(i, io.BytesIO(b'x'))
    with pytest.raises(ValueError, match='refusing'): extract_archive(t, tmp_path/'out', progress=False)
    t2 = tmp_path/'links.tar.gz'
    with tarfile.open(t2, 'w:gz') as f:
        b = jpeg_bytes(); i = tarfile.TarInfo('kimchi/깍두기/a.jpg'); i.size = len(b); f.addfile(i, io.BytesIO(b))
        l = tarfile.TarInfo('kimchi/깍두기/link.jpg'); l.type = tarfile.SYMTYPE; l.linkname = '/etc/passwd'; f.addfile(l)
        h = tarfile.TarInfo('kimchi/깍두기/hard.jpg'); h.type = tarfile.LNKTYPE; h.linkname = '../../../etc/passwd'; f.addfile(h)
    root = extract_archive(t2, tmp_path/'out2', progress=False, verbose=False)
    assert sorted(p.name for p in (root/'깍두기').iterdir()) == ['a.jpg']
    assert not any(p.is_symlink() for p in (tmp_path/'out2').rglob('*'))

def test_cp949_zip(tmp_path):
    z = cp949_zip(tmp_path/'k.zip', {'김치/배추김치/사진_1.jpg': jpeg_bytes(), '김치/깍두기/a.JPG': jpeg_bytes()})
    with zipfile.ZipFile(z) as f:
        assert not any(i.flag_bits & 0x800 for i in f.infolist()) and not any('김치' in i.filename for i in f.infolist())
    before = z.read_bytes()
    root = extract_archive(z, tmp_path/'out', progress=False, verbose=False)
    assert root.name == '김치' and sorted(p.name for p in root.iterdir()) == ['깍두기', '배추김치']
    assert (root/'배추김치'/'사진_1.jpg').read_bytes() == jpeg_bytes() and z.read_bytes() == before
    # explicit encoding, and a second call reuses the finished folder
    assert extract_archive(z, tmp_path/'out', encoding='cp949', progress=False, verbose=False) == root

def test_utf8_zips(tmp_path):
    src = tmp_path/'f'; (src/NFD('오이소박이')).mkdir(parents=True); (src/NFD('오이소박이')/'a.jpg').write_bytes(jpeg_bytes())
    flagged = zip_folder(src, tmp_path/'flagged.zip', mac_clutter=True)
    root = extract_archive(flagged, tmp_path/'o1', progress=False, verbose=False)
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob('*'))
    assert names == ['오이소박이', '오이소박이/a.jpg'] and all(n == unicodedata.normalize('NFC', n) for n in names)
    assert not (tmp_path/'o1'/'__MACOSX').exists()
    # UTF-8 bytes without the flag (many Linux tools)
    unflagged = zip_folder(src, tmp_path/'unflagged.zip', encoding='utf-8')
    with zipfile.ZipFile(unflagged) as z, zipfile.ZipFile(tmp_path/'noflag.zip', 'w') as out:
        for i in z.infolist():
            zi = type('ZI', (zipfile.ZipInfo,), {'_encodeFilenameFlags': lambda self: (self.filename.encode('utf-8'), self.flag_bits & ~0x800)})(i.filename)
            out.writestr(zi, z.read(i))
    root = extract_archive(tmp_path/'noflag.zip', tmp_path/'o2', progress=False, verbose=False)
    assert (root/'오이소박이'/'a.jpg').exists()

def test_unicode_path_extra_field(tmp_path):
    "7-Zip style: a CP949 name plus an Info-ZIP Unicode Path extra field with the UTF-8 name"
    import struct, zlib
    real = '파김치/b.jpg'; legacy = real.encode('cp949')
    u = real.encode('utf-8'); extra = struct.pack('<HHB', 0x7075, 5+len(u), 1) + struct.pack('<I', zlib.crc32(legacy)) + u
    z = tmp_path/'x.zip'
    with zipfile.ZipFile(z, 'w') as f:
        zi = type('ZI', (zipfile.ZipInfo,), {'_encodeFilenameFlags': lambda self: (legacy, self.flag_bits & ~0x800)})('placeholder')
        zi.extra = extra; f.writestr(zi, jpeg_bytes())
    root = extract_archive(z, tmp_path/'o', progress=False, verbose=False)
    assert (root/'b.jpg').exists() and root.name == '파김치'

def test_extract_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError): extract_archive(tmp_path/'missing.zip', tmp_path/'o')
    (tmp_path/'notzip.zip').write_bytes(b'PK\x03\x04 this is junk')
    with pytest.raises(ValueError, match='neither a zip nor a tar'): extract_archive(tmp_path/'notzip.zip', tmp_path/'o')
    with pytest.raises(ValueError, match='is a folder'): extract_archive(tmp_path, tmp_path/'o')
    z = cp949_zip(tmp_path/'k.zip', {'배추김치/a.jpg': jpeg_bytes()})
    (tmp_path/'full').mkdir(); (tmp_path/'full'/'mine.txt').write_text('keep me')
    with pytest.raises(ValueError, match='not empty'): extract_archive(z, tmp_path/'full')
    assert (tmp_path/'full'/'mine.txt').read_text() == 'keep me'

def test_extract_concurrent_and_local_copy(tmp_path):
    z = cp949_zip(tmp_path/'k.zip', {f'김치/배추김치/{i}.jpg': jpeg_bytes(color=(i, 0, 0)) for i in range(30)})
    res, errs = [], []
    def go():
        try: res.append(extract_archive(z, tmp_path/'out', local_copy=True, progress=False, verbose=False))
        except Exception as e: errs.append(e)
    ts = [threading.Thread(target=go) for _ in range(3)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert not errs and len(set(res)) == 1
    assert len(list((res[0]/'배추김치').iterdir())) == 30 and not list(tmp_path.glob('.out.part-*'))

# ---------------------------------------------------------------- scanning
def test_scan_statuses(hostile):
    before = file_hashes(hostile)
    sc = scan_images(hostile, workers=4)
    st = {r.name: r.status for r in sc.df.itertuples()}
    assert {k: st[k] for k in ('zero.jpg', 'cut.jpg', 'text.jpg', '.DS_Store', 'crop_area.properties', 'tiny.jpg', 'cut.png',
                               'stray.jpg', '._Img_0.jpg', 'README.txt')} == dict(
        zip(('zero.jpg', 'cut.jpg', 'text.jpg', '.DS_Store', 'crop_area.properties', 'tiny.jpg', 'cut.png', 'stray.jpg', '._Img_0.jpg', 'README.txt'),
            ('empty', 'unreadable', 'not_image', 'junk', 'metadata', 'too_small', 'unreadable', 'unknown_class', 'junk', 'other')))
    for ok in ('Img_0.jpg', 'cmyk.jpg', 'gray.PNG', 'alpha.png', 'deep16.png', 'anim.GIF', 'bitmap.BMP', 'phone.JPEG', 'png_named.jpg'):
        assert st[ok] == 'ok', ok
    c = sc.counts
    assert c.loc['baechu-kimchi', 'ok'] == 4 and c.loc['kkakdugi', 'ok'] == 8 and c.loc['baek-kimchi', 'ok'] == 0
    assert c.loc['baechu-kimchi', 'hangul'] == '배추김치' and len(c) == 11
    text = sc.summary()
    assert 'classes with NO good images' in text and 'baek-kimchi' in text and "'misc' (1)" in text
    assert len(sc.good) == 12 and all(p.exists() for p in sc.good)
    assert set(sc.problems.status) == {'empty', 'unreadable', 'not_image', 'junk', 'too_small', 'unknown_class'}
    notes = dict(zip(sc.df.name, sc.df.note))
    assert '3 frames' in notes['anim.GIF'] and 'PNG data' in notes['png_named.jpg']
    assert sc.df.set_index('name').loc['phone.JPEG', 'orientation'] == 6
    assert scan_images(hostile, workers=0).df.status.tolist() == sc.df.status.tolist()
    assert file_hashes(hostile) == before

def test_scan_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError): scan_images(tmp_path/'nope')
    (tmp_path/'f.jpg').write_bytes(jpeg_bytes())
    with pytest.raises(NotADirectoryError): scan_images(tmp_path/'f.jpg')
    (tmp_path/'empty').mkdir()
    sc = scan_images(tmp_path/'empty'); assert len(sc) == 0 and len(sc.good) == 0 and 'scanned 0 files' in sc.summary()

# ---------------------------------------------------------------- crop boxes
def test_read_crop_boxes(hostile, tmp_path):
    before = file_hashes(hostile)
    b = read_crop_boxes(hostile/NFD('배추김치'))
    assert dict(b) == {'img_0': (10, 20, 100, 50)} and len(b.skipped) == 3
    assert b['IMG_0'] == b[Path('x/img_0.JPG')] == b.get('Img_0.jpeg') == (10, 20, 100, 50) and 'img_1' not in b
    assert [i for i,_ in b.skipped] == [2, 3, 5]
    assert len(read_crop_boxes(hostile/'깍두기')) == 0
    with pytest.raises(FileNotFoundError): read_crop_boxes(tmp_path/'nope')
    p = tmp_path/'crop_area.properties'; p.write_bytes('\ufeff사진_01=1,2,3,4\r\nx=1.5,2,3,4\r\n'.encode('utf-8'))
    assert dict(read_crop_boxes(p)) == {'사진_01': (1, 2, 3, 4), 'x': (2, 2, 3, 4)}
    assert file_hashes(hostile) == before

# ---------------------------------------------------------------- selection
def test_select_per_class(hostile):
    before = file_hashes(hostile)
    sc = scan_images(hostile)
    a, b = select_per_class(sc, 2, seed=3), select_per_class(list(reversed(sc.good)), 2, seed=3)
    assert a == b and len(a) == 4 and len({f.parent for f in a}) == 2
    assert {f.name for f in select_per_class(sc, 2, seed=None)} == {'Img_0.jpg', 'Img_1.jpg', 'alpha.png', 'anim.GIF'}
    assert len(select_per_class(sc)) == 12
    with pytest.raises(ValueError): select_per_class(sc, -1)
    assert file_hashes(hostile) == before

# ---------------------------------------------------------------- presize
def test_presize_everything(hostile, tmp_path):
    before = file_hashes(hostile)
    sc = scan_images(hostile)
    dest = tmp_path/'cache'/'p64'
    rep = presize(sc.good + [hostile/NFD('배추김치')/'cut.jpg'], dest, size=64, workers=0, progress=False)
    assert (rep.df.status == 'new').sum() == 12 and len(rep.failed) == 1 and 'cut.jpg' in str(rep.failed.src[0])
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith('.')) == ['baechu-kimchi', 'kkakdugi']
    for f in rep.files:
        with Image.open(f) as im: assert im.mode == 'RGB' and min(im.size) == 64 and im.format == 'JPEG', f
    with Image.open(dest/'kkakdugi'/'phone.jpg') as im: assert im.size == (64, 192) # EXIF rotation applied
    with Image.open(dest/'kkakdugi'/'deep16.jpg') as im: assert abs(im.getpixel((5, 5))[0] - 50000/257) < 3 # not clipped to white
    with Image.open(dest/'kkakdugi'/'alpha.jpg') as im: assert min(im.getpixel((5, 5))) > 245 # transparent -> white
    assert not list(dest.rglob('*.part')) and file_hashes(hostile) == before
    # resumable: a second run writes nothing
    mt = {f: f.stat().st_mtime_ns for f in rep.files}
    rep2 = presize(sc.good, dest, size=64, workers=2, progress=False)
    assert set(rep2.df.status) == {'cached'} and {f: f.stat().st_mtime_ns for f in rep.files} == mt
    with pytest.raises(ValueError, match='made with'): presize(sc.good, dest, size=65, workers=0)
    assert file_hashes(hostile) == before

def test_presize_refuses_source_tree(hostile):
    sc = scan_images(hostile)
    for d in (hostile/'cache', hostile, hostile/NFD('배추김치'), hostile.parent):
        with pytest.raises(ValueError, match='overlaps'): presize(sc, d, size=32, workers=0)
    assert not (hostile/'cache').exists()

def test_presize_crop_boxes(hostile, tmp_path):
    sc = scan_images(hostile)
    rep = presize(sc.good, tmp_path/'crops', size=20, crop_boxes=True, workers=0, progress=False)
    with Image.open(tmp_path/'crops'/'baechu-kimchi'/'Img_0.jpg') as im: assert im.size == (40, 20) # the 100x50 box
    with Image.open(tmp_path/'crops'/'baechu-kimchi'/'Img_1.jpg') as im: assert im.size == (30, 20) # malformed line: whole image
    assert rep.df.box.notna().sum() == 1

def test_presize_concurrent(hostile, tmp_path):
    sc = scan_images(hostile); errs = []
    def go():
        try: presize(sc.good, tmp_path/'shared', size=48, workers=0, progress=False, resume=False)
        except Exception as e: errs.append(e)
    ts = [threading.Thread(target=go) for _ in range(3)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert not errs and not list((tmp_path/'shared').rglob('*.part'))
    assert len(list((tmp_path/'shared').rglob('*.jpg'))) == 12

def test_presize_draft_matches_full_decode(tmp_path):
    "Reduced-scale decoding gives (nearly) the same picture as decoding in full and resizing"
    src = tmp_path/'s'/'c'/'big.jpg'; src.parent.mkdir(parents=True)
    a = np.zeros((1200, 1600, 3), np.uint8); a[:, :800] = (220, 40, 40); a[300:900, 900:1300] = (30, 160, 60)
    Image.fromarray(a).save(src, quality=95)
    fast = np.asarray(presize_image(src, 300), dtype=np.float32)
    slow = np.asarray(Image.open(src).convert('RGB').resize((400, 300), Image.BILINEAR), dtype=np.float32)
    assert fast.shape == slow.shape and np.abs(fast - slow).mean() < 3

# ---------------------------------------------------------------- prepare, kimchi_source, kimchi_path
def test_prepare_from_cp949_zip(tmp_path, capsys):
    names = {f'김치/{c}/{i}.jpg': jpeg_bytes(120 + i, 90, (i*9, 100, 50)) for c in ('배추김치', '깍두기') for i in range(6)}
    names['김치/배추김치/broken.jpg'] = b''
    z = cp949_zip(tmp_path/'aihub.zip', names); before = z.read_bytes()
    rep = prepare(z, tmp_path/'out', per_class=4, size=40, workers=0)
    out = capsys.readouterr().out
    assert 'empty' in out and 'selected 8 of 12' in out and 'presized 8 images' in out
    assert sorted(p.name for p in (tmp_path/'out').iterdir() if not p.name.startswith('.')) == ['baechu-kimchi', 'kkakdugi']
    assert len(rep.files) == 8 and z.read_bytes() == before
    with pytest.raises(FileNotFoundError, match='does not exist'): prepare(tmp_path/'nope.zip', tmp_path/'o2')
    (tmp_path/'noclass'/'stuff').mkdir(parents=True); noisy(64, 64).save(tmp_path/'noclass'/'stuff'/'a.jpg')
    with pytest.raises(ValueError, match='no usable kimchi images'): prepare(tmp_path/'noclass', tmp_path/'o3', verbose=False)
    with pytest.raises(ValueError, match='per_class'): prepare(tmp_path/'noclass', tmp_path/'o4', per_class=0)

def test_kimchi_source_full_mode(tmp_path):
    s, off = course_settings('full', env={}), {'HF_HUB_OFFLINE': '1'}
    with pytest.raises(ConnectionError, match="couldn't reach the Hugging Face Hub"): kimchi_source(s, env={**off, 'KIMCHI_SOURCE': 'hf'})
    with pytest.raises(FileNotFoundError): kimchi_source(s, env={'KIMCHI_DATA': str(tmp_path/'nope.zip')})
    z = cp949_zip(tmp_path/'aihub.zip', {f'김치/파김치/{i}.jpg': jpeg_bytes() for i in range(3)})
    root = kimchi_source(s, env={'KIMCHI_DATA': str(z)})
    assert root.name == '김치' and str(root).startswith(str(tmp_path/'cache'))
    assert kimchi_source(s, env={'KIMCHI_DATA': str(root)}) == root

def test_kimchi_path_full_mode(tmp_path):
    src = make_toy_kimchi(tmp_path/'aihub', n_per_class=4, seed=3, hangul='nfd', large_frac=0)
    before = file_hashes(src)
    s = course_settings('full', n_per_class=3, presize=32, workers=0)
    p = kimchi_path(s, env={'KIMCHI_DATA': str(src)})
    assert sorted(f.parent.name for f in kimchi_files(p)) == sorted(KIMCHI_SLUGS*3)
    assert kimchi_path(s, env={'KIMCHI_DATA': str(src)}) == p and kimchi_path(s, prepared=False, env={'KIMCHI_DATA': str(src)}) == src
    dls = kimchi_dls(p, size=32, presize=32, bs=2, workers=0)
    assert set(dls.vocab) == set(KIMCHI_SLUGS)
    assert file_hashes(src) == before

def test_full_mode_falls_back_to_toy_in_one_line(capsys, monkeypatch):
    from kimchi_course import archives
    monkeypatch.setattr(archives, '_SAID', set())
    s = course_settings('full', env={})
    a = kimchi_source(s, n_per_class=2, env={'HF_HUB_OFFLINE': '1'})
    b = kimchi_source(s, n_per_class=2, env={'HF_HUB_OFFLINE': '1'})
    out = capsys.readouterr().out.strip().splitlines()
    assert a == b and read_marker(a, '.toy-kimchi.json')['synthetic'] is True
    assert len(out) == 1 and out[0].startswith('data: toy-kimchi') and 'set KIMCHI_DATA' in out[0] # said once, with what to set
    assert data_source(s, {'HF_HUB_OFFLINE': '1'}).name == 'toy' and 'set KIMCHI_DATA' in data_source(s, {'HF_HUB_OFFLINE': '1'}).note

def test_presize_refuses_a_list_from_a_nested_extraction(tmp_path):
    "Issue 16: a plain list of files from `kfood/김치/<class>/` still keeps the cache out of the whole extracted tree"
    names = {f'kfood/김치/{c}/{i}.jpg': jpeg_bytes(60, 50) for c in ('배추김치', '깍두기') for i in range(2)}
    root = extract_archive(cp949_zip(tmp_path/'aihub.zip', names), tmp_path/'ext', verbose=False)
    files = [f for f in root.rglob('*.jpg')]
    for d in (tmp_path/'ext'/'cache', root/'cache', root/'김치'/'cache'):
        with pytest.raises(ValueError, match='overlaps'): presize(files, d, size=32, workers=0)
        assert not d.exists()
    assert len(presize(files, tmp_path/'cache-outside', size=32, workers=0).files) == 4

# ---------------------------------------------------------------- DataLoaders
def test_kimchi_dls_on_originals(hostile):
    sc = scan_images(hostile)
    dls = kimchi_dls(select_per_class(sc, 3), size=32, presize=48, bs=2, workers=0)
    labels = {dls.vocab[y] for ds in (dls.train_ds, dls.valid_ds) for _,y in ds}
    assert labels == {'baechu-kimchi', 'kkakdugi'}
    with pytest.raises(ValueError, match='not kimchi classes'): kimchi_dls(hostile, size=32, presize=48, bs=2, workers=0)
    checked = kimchi_dls(hostile, size=32, presize=48, bs=2, workers=0, check=True) # broken files and 'misc' left out
    assert len(checked.train_ds) + len(checked.valid_ds) == len(sc.good) == 12

# ---------------------------------------------------------------- PETS, split folders
def test_pets_dls(tmp_path, toy_kimchi):
    img = tmp_path/'pets'/'images'; img.mkdir(parents=True)
    for b,c in (('Abyssinian', 'baek-kimchi'), ('great_pyrenees', 'gat-kimchi')):
        for i,f in zip((1, 12, 173), kimchi_files(toy_kimchi/c)): shutil.copyfile(f, img/f'{b}_{i}.jpg')
    dls = pets_dls(tmp_path/'pets', size=32, presize=48, bs=2, workers=0)
    assert list(dls.vocab) == ['Abyssinian', 'great_pyrenees']
    (img/'oops.jpg').write_bytes(jpeg_bytes())
    with pytest.raises(ValueError, match="don't match"): pets_dls(img, size=32, presize=48, bs=2, workers=0)

def test_presize_flat_folder_next_to_dest(tmp_path):
    "A flat folder of photos may sit beside the cache (only a class folder's dataset root is off limits)"
    (tmp_path/'photos').mkdir()
    Image.new('RGB', (120, 90), 'red').save(tmp_path/'photos'/'a.jpg')
    rep = presize([tmp_path/'photos'/'a.jpg'], tmp_path/'cache', size=32, workers=0)
    assert len(rep.files) == 1

def test_folder_dls_and_one_recipe(tmp_path, toy_kimchi):
    "A train/valid(/test) folder: GrandparentSplitter and parent_label, otherwise the kimchi recipe"
    root = tmp_path/'split'
    for part,sl in (('train', slice(0, 2)), ('valid', slice(2, 3)), ('test', slice(3, 4))):
        for c in ('kkakdugi', 'pa-kimchi'):
            (root/part/c).mkdir(parents=True)
            for f in kimchi_files(toy_kimchi/c)[sl]: shutil.copyfile(f, root/part/c/f.name)
    dls = folder_dls(root, size=32, presize=40, bs=2, workers=0)
    assert list(dls.vocab) == ['kkakdugi', 'pa-kimchi'] and (len(dls.train_ds), len(dls.valid_ds)) == (4, 2)
    assert {f.parent.parent.name for f in dls.valid_ds.items} == {'valid'}
    (root/'valid').rename(root/'validation')
    assert len(folder_dls(root, size=32, presize=40, bs=2, workers=0).valid_ds) == 2 # the Keras book's name is found too
    with pytest.raises(FileNotFoundError, match='missing'): folder_dls(root/'train')
    k = kimchi_dls(toy_kimchi, size=32, presize=40, bs=2, workers=0)
    tfms = lambda d: [repr(t) for t in d.train.after_item] + [type(t).__name__ for t in d.train.after_batch]
    assert tfms(dls) == tfms(k) # the same recipe: only labels and split differ

# ---------------------------------------------------------------- warnings stay with their file (issue: catch_warnings in threads)
def test_scan_warnings_stay_with_their_file(tmp_path, monkeypatch):
    "Every file raises a different warning; with 16 threads each row must carry its own warning and nobody else's"
    d = tmp_path/'photos'; d.mkdir()
    for i in range(200): Image.new('L', (400, 251+i)).save(d/f'p{i:03d}.png')
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100_000) # all over it (by different amounts), all under the 2x error limit
    filters, show = list(warnings.filters), warnings.showwarning
    sc = scan_images(d, workers=16, label=str)
    assert [f'({400*(251+i)} pixels)' in n for i,n in enumerate(sc.df.note)] == [True]*200
    assert [n.count('pixels)') for n in sc.df.note] == [1]*200
    assert warnings.filters == filters and warnings.showwarning is show # the hook is gone after the scan
    from concurrent.futures import ThreadPoolExecutor # check_image on its own, from someone else's threads
    with ThreadPoolExecutor(8) as ex: rows = list(ex.map(check_image, sorted(d.iterdir())))
    assert [f'({400*(251+i)} pixels)' in r['note'] for i,r in enumerate(rows)] == [True]*200
    with warnings.catch_warnings(record=True) as ws: # warnings outside a scan are shown as before
        warnings.simplefilter('always'); warnings.warn('after the scan')
    assert [str(w.message) for w in ws] == ['after the scan']

def test_scan_summary_names_left_out_files(hostile, tmp_path):
    text = scan_images(hostile).summary()
    for rel,st in (('배추김치/zero.jpg', 'empty'), ('배추김치/cut.jpg', 'unreadable'), ('깍두기/tiny.jpg', 'too_small'),
                   ('misc/stray.jpg', 'unknown_class'), ('__MACOSX/배추김치/._Img_0.jpg', 'junk'), ('배추김치/.DS_Store', 'junk')):
        assert f'\n  {rel}  ({st})' in text, (rel, text)
    assert 'left out (8 files):' in text and 'README.txt' not in text.split('left out')[1] # not an image: not "left out"
    many = tmp_path/'many'/'배추김치'; many.mkdir(parents=True)
    for i in range(25): (many/f'e{i:02d}.jpg').write_bytes(b'')
    text = scan_images(many.parent).summary()
    assert text.count('  (empty)') == 20 and '\n  배추김치/e19.jpg  (empty)\n  … and 5 more' in text

def test_open_image_formats_and_errors(hostile):
    k = hostile/'깍두기'
    for f in ('cmyk.jpg', 'gray.PNG', 'alpha.png', 'deep16.png', 'anim.GIF', 'bitmap.BMP', 'png_named.jpg'):
        im = open_image(k/f); assert (im.mode, im.size) == ('RGB', (200, 150)), f
    assert open_image(k/'phone.JPEG').size == (100, 300) and open_image(k/'phone.JPEG', 50).size == (50, 150)
    assert open_image(k/'deep16.png').getpixel((0, 0)) == (195, 195, 195) # 50000/257, not clipped to white
    assert open_image(k/'alpha.png').getpixel((0, 0)) == (255, 255, 255) # transparent -> white
    b = hostile/NFD('배추김치')
    for f in ('zero.jpg', 'text.jpg'):
        with pytest.raises(UnidentifiedImageError): open_image(b/f)
    with pytest.raises(OSError, match='truncated'): open_image(b/'cut.jpg')

def test_crop_box_reads_each_folder_once(tmp_path, monkeypatch, toy_kimchi):
    import kimchi_course.crop_boxes as cb
    calls, real = [], cb.read_crop_boxes
    monkeypatch.setattr(cb, 'read_crop_boxes', lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    d = tmp_path/'pa'; shutil.copytree(toy_kimchi/'pa-kimchi', d)
    files = kimchi_files(d)
    want = real(d)
    assert [crop_box(f) for f in files*3] == [want[f] for f in files]*3 and len(calls) == 1
    (d/'crop_area.properties').write_text(f'{files[0].stem}=1,2,3,4\n')
    assert (crop_box(files[0]), crop_box(files[1])) == ((1, 2, 3, 4), None) and len(calls) == 2 # the file changed: read again
    assert crop_box(tmp_path/'nowhere'/'a.jpg') is None and len(calls) == 2 # no box file: nothing to read

# ---------------------------------------------------------------- the source tree (issue 16)
def test_presize_refuses_anywhere_inside_a_nested_source_tree(tmp_path, toy_kimchi):
    "AI Hub nests the classes (kfood/김치/<class>/): no cache anywhere inside that tree, nor around it"
    kfood = tmp_path/'kfood'
    for c in ('baechu-kimchi', 'kkakdugi'): shutil.copytree(toy_kimchi/c, kfood/'김치'/HANGUL[c])
    before = file_hashes(kfood)
    sc = scan_images(kfood); files = list(sc.good)
    inside = [kfood/'cache', kfood/'김치', kfood/'김치'/'cache', kfood/'김치'/'배추김치', kfood/'김치'/'깍두기'/'x'/'y', tmp_path]
    for d in inside:
        for what in (sc, kfood):
            with pytest.raises(ValueError, match='overlaps'): presize(what, d, size=32, workers=0)
    for d in inside[2:]: # a plain list of files: the folder that holds them all, and each class folder's dataset root
        with pytest.raises(ValueError, match='overlaps'): presize(files, d, size=32, workers=0)
    with pytest.raises(ValueError, match='overlaps'): presize([f for f in files if f.parent.name == '배추김치'], kfood/'김치'/'cache', size=32, workers=0)
    with pytest.raises(ValueError, match='overlaps'): prepare(kfood, kfood/'cache', verbose=False)
    assert file_hashes(kfood) == before and not (kfood/'cache').exists() and not (kfood/'김치'/'cache').exists()
    assert len(presize(sc, tmp_path.parent/f'{tmp_path.name}-elsewhere', size=32, workers=0).files) == 8 # outside: fine

# ---------------------------------------------------------------- prepare: exact counts
def test_prepare_messy_toy_kimchi(tmp_path, capsys):
    "prepare on a messy toy-kimchi (NFD names, broken files): names what it leaves out, presizes exactly 3 per class"
    src = make_toy_kimchi(tmp_path/'toy', n_per_class=4, seed=1, hangul='nfd', broken_files=True, malformed_props=True, large_frac=0)
    before = file_hashes(src)
    rep = prepare(src, tmp_path/'cache', per_class=3, size=64, workers=0)
    out = capsys.readouterr().out
    assert rep.df.status.value_counts().to_dict() == {'new': 33}
    assert sorted(p.parent.name for p in (tmp_path/'cache').rglob('*.jpg')) == sorted(KIMCHI_SLUGS*3)
    st = rep.scan.df.status.value_counts().to_dict()
    assert st == {'ok': 44, 'metadata': 11, 'other': 2, 'junk': 2, 'empty': 1, 'unreadable': 1, 'not_image': 1}, st
    broken = json.loads((src/'.toy-kimchi.json').read_text())['broken']
    assert 'left out (5 files):' in out and all(f"\n  {unicodedata.normalize('NFC', b)}  (" in out for b in broken), out
    assert 'selected 33 of 44 good images' in out and 'presized 33 images' in out
    assert file_hashes(src) == before
