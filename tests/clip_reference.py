"""Independent reference computations for the CLIP tests, written from the formulas of
CLIP-ES / SCLIP / NACLIP and open_clip's own forward pass (none of tedloc_mm's CLIP code
is used here), plus the tiny random open_clip towers the tests share."""
import cv2
import numpy as np
import torch
import torch.nn.functional as F

TINY = dict(embed_dim=32,
            vision_cfg=dict(image_size=32, layers=3, width=32, patch_size=8, head_width=16),
            text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))


def tiny_clip(seed=0, **overrides):
    """A random-weight open_clip CLIP (32 px, patch 8: a 4 x 4 grid, 2 heads, 3 layers)."""
    import open_clip
    cfg = dict(TINY, **overrides)
    torch.manual_seed(seed)
    model = open_clip.create_model('ViT-B-16', pretrained=None, **cfg).eval()
    return model, open_clip.get_tokenizer('ViT-B-16', context_length=model.context_length)


@torch.no_grad()
def text_embeddings(model, tokenizer, names, templates):
    """Per name: mean over templates of normalised encode_text, normalised (K, D)."""
    rows = []
    for n in names:
        e = F.normalize(model.encode_text(tokenizer([t.format(n) for t in templates])), dim=-1)
        rows.append(F.normalize(e.mean(0), dim=0))
    return torch.stack(rows)


def open_clip_forward(model, x):
    """open_clip's own VisionTransformer.forward: (pooled image embedding (B, D),
    ln_post-ed tokens without the class token (B, N, C))."""
    visual = model.visual
    visual.output_tokens = True
    try:
        pooled, tokens = visual(x)
    finally:
        visual.output_tokens = False
    return pooled, tokens


def mha_weights(model, x):
    """Head-averaged attention weights (B, L, L) of every vision block, from torch's own
    nn.MultiheadAttention(need_weights=True) on the block inputs ln_1(x_l)."""
    inputs, handles = [], []
    for blk in model.visual.transformer.resblocks:
        handles.append(blk.ln_1.register_forward_hook(lambda m, i, o: inputs.append(o)))
    try:
        with torch.no_grad():
            model.visual(x)
    finally:
        for h in handles:
            h.remove()
    blocks = model.visual.transformer.resblocks
    with torch.no_grad():
        return [blk.attn(y, y, y, need_weights=True, average_attn_weights=True)[1]
                for blk, y in zip(blocks, inputs)]


def gradcam(model, x, text, label, bg, softmax_over='label', pool='patch_mean'):
    """Hand-written Grad-CAM of one image (1, 3, S, S) at the patch grid (h, w), min-max
    normalised as pytorch_grad_cam does: gradients of the softmax target with respect
    to the last block's ln_1 output, averaged over patches, ReLU of the weighted sum."""
    store = {}

    def hook(_, __, out):
        out.retain_grad()
        store['a'] = out

    visual = model.visual
    handle = visual.transformer.resblocks[-1].ln_1.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            x = x.clone().requires_grad_()
            pooled, tokens = open_clip_forward(model, x)
            v = tokens.mean(1) @ visual.proj if pool == 'patch_mean' else pooled
            logits = model.logit_scale.exp() * F.normalize(v, dim=-1) @ text.t()
            logits = logits[0]
            if softmax_over == 'all':
                target = torch.softmax(logits, 0)[label]
            else:
                target = torch.softmax(logits[[label] + list(bg)], 0)[0]
            target.backward()
    finally:
        handle.remove()
    a = store['a'][0, 1:].detach().double().numpy()
    g = store['a'].grad[0, 1:].double().numpy()
    side = int(round(a.shape[0]**0.5))
    cam = np.maximum(a @ g.mean(0), 0).reshape(side, side)
    cam = cam - cam.min()
    return cam / (cam.max() + 1e-7)


def numpy_caa(cam, attn, threshold=0.4):
    """CLIP-ES's CAA in NumPy: 3 column/row normalisation rounds, symmetrise, square, box
    mask from cv2 contours of the 8-bit CAM above int(threshold * max), refine."""
    t = np.asarray(attn, np.float64)
    for _ in range(3):
        t = t / t.sum(axis=0, keepdims=True)
        t = t / t.sum(axis=1, keepdims=True)
    t = (t + t.T) / 2
    t = t @ t
    h, w = cam.shape
    cam8 = (cam * 255).astype(np.uint8)
    _, bw = cv2.threshold(cam8, int(threshold * cam8.max()), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(bw, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    mask = np.zeros((h, w))
    for c in contours:
        x, y, bw_, bh = cv2.boundingRect(c)
        mask[y:min(y + bh, h - 1), x:min(x + bw_, w - 1)] = 1
    return ((t * mask.reshape(1, -1)) @ cam.reshape(-1)).reshape(h, w)


def minmax(a):
    a = a - a.min()
    return a / (a.max() + 1e-7)


#: an OpenAI-shaped tiny CLIP: OpenAI archives infer heads = width // 64 and QuickGELU
TINY_OPENAI_NAME = 'tedloc-test-tiny-openai'
TINY_OPENAI = dict(embed_dim=32, quick_gelu=True,
                   vision_cfg=dict(image_size=32, layers=2, width=64, patch_size=8,
                                   head_width=64),
                   text_cfg=dict(context_length=16, vocab_size=49408, width=64, heads=1,
                                 layers=1))


def register_tiny_openai(config_dir):
    """Register TINY_OPENAI as open_clip architecture ``TINY_OPENAI_NAME``."""
    import json

    import open_clip
    with open(f'{config_dir}/{TINY_OPENAI_NAME}.json', 'w') as f:
        json.dump(TINY_OPENAI, f)
    open_clip.add_model_config(str(config_dir))


def write_openai_archive(model, path):
    """The package's writer (tedloc_mm/clip/checkpoint.py), kept under this name."""
    from tedloc_mm.clip.checkpoint import write_openai_archive as write
    return write(model, path)
