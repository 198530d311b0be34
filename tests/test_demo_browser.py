"""The demo as a user meets it: served on localhost, driven in headless Chromium (Playwright with the system browser),
a volume and a wav uploaded, Analyse clicked; the page's findings table equals the pipeline's scores."""

import os
import shutil
import socket

import numpy as np
import soundfile as sf
from tiny_folder import save_tiny_folder, wave
from volumes import canonical_volume, write_nifti

from modeling_speechct.hub.demo import DemoBackend, build_demo, launch
from modeling_speechct.labels import CT_RATE_LABELS

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_upload_click_and_read_the_findings_in_a_real_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    save_tiny_folder(tmp_path / "model")
    volume = write_nifti(canonical_volume(seed=3), tmp_path / "chest.nii.gz", "LPS")
    gallery = [write_nifti(canonical_volume(seed=s), tmp_path / f"g{s}.nii.gz", "RAS") for s in (4, 5, 6)]
    audio = tmp_path / "report.wav"
    sf.write(audio, wave(7, seconds=1.0), 16000)
    backend = DemoBackend(tmp_path / "model", prompts="spoken", gallery=[str(g) for g in gallery],
                          prompt_dir=tmp_path / "prompts", num_voices=1)  # fmt: skip
    demo = build_demo(backend)
    launch(demo, port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(demo.local_url)
            page.locator("#ct input[type=file]").set_input_files(str(volume))
            page.locator("#audio input[type=file]").set_input_files(str(audio))
            page.wait_for_timeout(500)
            page.click("#analyse")
            # Gradio's table: ARIA rows, the header is row 1, then one row per finding.
            rows = page.locator("#findings [role=row]")
            rows.nth(18).wait_for(state="attached", timeout=120_000)
            page.locator("#closest [role=row]").nth(3).wait_for(state="attached", timeout=60_000)
            cells = [
                [c.strip() for c in rows.nth(i).locator("[role=gridcell]").all_inner_texts()]
                for i in range(1, rows.count())
            ]
            if os.environ.get("SPEECHCT_DEMO_SCREENSHOT"):  # SPEECHCT_DEMO_SCREENSHOT=docs/demo.png (docs/hub.md)
                page.screenshot(path=os.environ["SPEECHCT_DEMO_SCREENSHOT"], full_page=True)
            views = page.locator("#views img")
            assert views.count() == 1 and views.first.get_attribute("src")
            browser.close()
    finally:
        demo.close()

    assert len(cells) == 18
    shown = {row[0]: float(row[1]) for row in cells}
    assert set(shown) == set(CT_RATE_LABELS)
    direct = backend.classify(str(volume), prompt_audio=backend.prompt_audio)
    expected = {s["label"]: s["score"] for s in direct}
    np.testing.assert_allclose([shown[k] for k in CT_RATE_LABELS], [expected[k] for k in CT_RATE_LABELS], atol=1e-4)
    assert len({round(v, 4) for v in shown.values()}) > 1  # the labels' prompts differ, so do their scores
