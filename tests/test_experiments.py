"The experiment table's contract: config rows are checked, results append and read back one mode at a time, a crop row without boxes is skipped (end to end, without training), and the committed results file is what the home page can read."
import json
import pytest
from PIL import Image
from conftest import ROOT
from kimchi_course.settings import course_settings, MODES
from kimchi_course.experiments import *

COMMITTED = ROOT/'nbs'/'results'/'kimchi_experiments.jsonl'

def _rec(run, date, mode, exp, acc=0.5, **kw):
    return dict(run_id=run, date=date, mode=mode, experiment=exp, status='done', accuracy=acc, **kw)

def _class_folder(root, name, n, props=None, ext='.jpg'):
    d = root/name; d.mkdir(parents=True)
    for i in range(n): Image.new('RGB', (48, 48), (40*i % 255, 90, 20)).save(d/f'img{i}{ext}')
    if props is not None: (d/'crop_area.properties').write_text(props)
    return d

# config rows

def test_hostile_config_rows():
    ok = [['fine_tune', {'epochs': 1}]]
    with pytest.raises(ValueError, match='a step is a pair'): parse_experiment(dict(name='x', steps=[{'fine_tune': {'epochs': 1}}]))
    with pytest.raises(ValueError, match='aug must be a dict'): parse_experiment(dict(name='x', aug=['flip_vert'], steps=ok))
    with pytest.raises(ValueError, match='needs epochs='): parse_experiment(dict(name='x', steps=[['fine_tune', {'epochs': True}]]))
    with pytest.raises(ValueError, match='needs n_epoch='): parse_experiment(dict(name='x', steps=[['fit_one_cycle', {'n_epoch': 1.5}]]))
    with pytest.raises(ValueError, match="no argument 'cbs'"): parse_experiment(dict(name='x', steps=[['fit', {'n_epoch': 1, 'cbs': []}]]))
    with pytest.raises(ValueError, match='steps must be a non-empty list'): parse_experiment(dict(name='x'))
    with pytest.raises(ValueError, match='a config row is a dict'): parse_experiment('1-resnet18')

def test_config_file_round_trip(tmp_path):
    exps = seed_000_experiments()
    (tmp_path/'rows.json').write_text(json.dumps([e.to_dict() for e in exps]))
    back = parse_experiments(tmp_path/'rows.json')
    assert back == exps
    assert config_table(back).crop_to_box.tolist() == [False, False, False, True]
    (tmp_path/'bad.json').write_text('{"name": "not a list"}')
    with pytest.raises(ValueError, match='non-empty list'): parse_experiments(tmp_path/'bad.json')

def test_smoke_rows_scale_only_epochs_and_lrs():
    full,smoke = seed_000_experiments(), seed_000_experiments(1, 1, 1, 1e-2, 1e-2, 1)
    assert [(e.name, e.arch, e.aug, e.crop_to_box) for e in full] == [(e.name, e.arch, e.aug, e.crop_to_box) for e in smoke]
    assert smoke[0].steps == [('fine_tune', dict(epochs=1, freeze_epochs=1, base_lr=1e-2, lr_mult=1)), ('fit_one_cycle', dict(n_epoch=1, lr_max=1e-2))]

# results file

def test_append_read_back_and_latest_per_experiment(tmp_path):
    p = tmp_path/'deep'/'r.jsonl'
    append_results([_rec('r1', '2024-01-01T00:00', 'smoke', 'a', 0.1), _rec('r1', '2024-01-01T00:01', 'smoke', 'b', 0.2)], p)
    append_results([_rec('r2', '2024-01-02T00:00', 'smoke', 'c', 0.3), _rec('r2', '2024-01-02T00:01', 'smoke', 'a', 0.4)], p)
    p.write_text(p.read_text() + '\n\n')  # blank lines are fine
    t = results_table(p)
    assert list(t.index) == ['a', 'b', 'c'] and t.accuracy.tolist() == [0.4, 0.2, 0.3]
    assert t.run_id.tolist() == ['r2', 'r1', 'r2']

def test_modes_never_mix(tmp_path):
    p = tmp_path/'r.jsonl'
    append_results([_rec('s1', '2024-01-01', 'smoke', 'a', 0.1)], p)
    assert results_table(p).accuracy.tolist() == [0.1]  # one mode: no need to name it
    append_results([_rec('f1', '2024-01-02', 'full', 'a', 0.9)], p)
    with pytest.raises(ValueError, match='not comparable'): results_table(p)
    assert results_table(p, mode='full').accuracy.tolist() == [0.9]
    q = tmp_path/'only_smoke.jsonl'; append_results([_rec('s1', '2024-01-01', 'smoke', 'a')], q)
    with pytest.raises(ValueError, match='holds no full records'): results_table(q, mode='full')
    md = results_markdown(p)
    assert md.count('| experiment |') == 2 and md.index('full mode') < md.index('smoke mode')

def test_keep_runs_per_mode(tmp_path):
    p = tmp_path/'r.jsonl'
    for i in range(4):
        append_results([_rec(f's{i}', f'2024-01-0{i+1}', 'smoke', 'a'), _rec(f's{i}', f'2024-01-0{i+1}', 'smoke', 'b')], p, keep_runs=2)
        if i == 0: append_results([_rec('f0', '2023-12-31', 'full', 'a')], p, keep_runs=2)
    runs = read_results(p).groupby('mode').run_id.unique().map(list).to_dict()
    assert runs == {'full': ['f0'], 'smoke': ['s2', 's3']}
    assert not list(tmp_path.glob('.r.jsonl.*'))  # no temporary file left behind

def test_hostile_results_files(tmp_path):
    p = tmp_path/'r.jsonl'
    p.write_text('[1, 2]\n')
    with pytest.raises(ValueError, match='line 1: not an experiment record'): read_results(p)
    p.write_text(json.dumps(_rec('r', 'd', 'smoke', 'a')) + '\n' + json.dumps(dict(mode='smoke', run_id='r')) + '\n')
    with pytest.raises(ValueError, match='line 2: not an experiment record'): read_results(p)
    with pytest.raises(FileNotFoundError, match='run the experiments first'): results_table(tmp_path/'nope.jsonl')
    assert results_markdown(tmp_path/'nope.jsonl').startswith('No experiment results yet')
    with pytest.raises(ValueError, match="needs mode 'smoke' or 'full'"): append_results([dict(experiment='a', run_id='r')], tmp_path/'x.jsonl')
    q = tmp_path/'pipes.jsonl'
    append_results([dict(run_id='r', date='d', mode='full', experiment='4-crop', status='skipped', reason='a | b')], q)
    assert 'skipped: a \\| b' in results_markdown(q)

# crop-to-box skip logic, end to end

def test_box_coverage_matches_stems_case_insensitively(tmp_path):
    d = _class_folder(tmp_path, 'kkakdugi', 2, 'IMG0=1,1,20,20\nimg1=0,0,10,10\n', ext='.JPG')
    cov = box_coverage(sorted(d.glob('*.JPG')))
    assert cov.with_box.tolist() == [2] and crop_skip_reason(cov) == ''

def test_crop_row_without_boxes_is_skipped_and_recorded(tmp_path, monkeypatch):
    "A dataset without crop_area.properties: the crop row becomes a skipped record with the reason; nothing trains"
    src = tmp_path/'photos'
    for c in ('kkakdugi', 'pa-kimchi'): _class_folder(src, c, 3)
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'cache'))
    monkeypatch.setenv('KIMCHI_DATA', str(src))
    s = course_settings('full', threads=None)
    res = tmp_path/'r.jsonl'
    row = Experiment('4-resnet18-crop', 'resnet18', steps=[('fine_tune', dict(epochs=1))], crop_to_box=True)
    t = run_experiments([row], s, results=res, verbose=False)
    assert t.status.tolist() == ['skipped']
    assert 'no crop_area.properties file in any of the 2 class folders' in t.reason.iloc[0]
    rec = read_results(res).iloc[0]
    assert rec['mode'] == 'full' and rec.config['crop_to_box'] is True and rec.versions and rec.device
    assert not (src/'kkakdugi'/'crop_area.properties').exists() and sorted(p.name for p in (src/'kkakdugi').iterdir()) == ['img0.jpg', 'img1.jpg', 'img2.jpg']

def test_crop_row_with_few_boxes_is_skipped(tmp_path):
    src = tmp_path/'photos'
    _class_folder(src, 'kkakdugi', 4, 'img0=1,1,20,20\n')
    _class_folder(src, 'pa-kimchi', 4, 'img0=1,1\n')
    with pytest.raises(SkipExperiment, match=r'only 1 of 8 images \(12%\)'): crop_path(src, dest=tmp_path/'c')
    assert not (tmp_path/'c').exists()

# the committed file, as the home page reads it

def test_committed_results_file_is_readable_by_the_home_page():
    assert COMMITTED.is_file(), 'nbs/10_experiments.ipynb writes nbs/results/kimchi_experiments.jsonl; run it and commit the file'
    df = read_results(COMMITTED)
    assert set(df['mode']) <= set(MODES)
    for m in set(df['mode']):
        t = results_table(COMMITTED, mode=m)
        assert list(t.index) == [e.name for e in seed_000_experiments()]
        done = t[t.status == 'done']
        assert done.valid_set.nunique() == 1  # every row of the latest run validated on the same photos
        assert ((done.accuracy + done.error_rate - 1).abs() < 1e-6).all()
    assert '| 1-resnet18 | resnet18 | no |' in results_markdown(COMMITTED)
