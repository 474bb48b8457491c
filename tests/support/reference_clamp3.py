"""A literal, unoptimised transcription of the reference (docs/model-spec.md), to compare with.

Written independently of `timbre.embedding`: it builds its own models from the bundle files,
runs one window and one 128-row padded segment at a time with eager attention, normalises
with transformers' own ``Wav2Vec2FeatureExtractor``, and does nothing clever. Timbre's batched
pipeline must agree with it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import (
    BertConfig,
    BertModel,
    HubertConfig,
    HubertModel,
    Wav2Vec2FeatureExtractor,
    XLMRobertaConfig,
    XLMRobertaModel,
)

SR = 24000
WIN = 5 * SR
MIN_LAST = 1 * SR
SEG = 128
MIN_CLIP = SR // 10  # Timbre's short-clip policy (not in the reference)


class Reference:
    def __init__(self, bundle: Path, clamp3_filename: str) -> None:
        cfg = json.loads((bundle / "mert" / "config.json").read_text())
        fields = {
            k: v for k, v in cfg.items() if k in HubertConfig().to_dict() and k != "model_type"
        }
        hub_cfg = HubertConfig(**fields)
        hub_cfg._attn_implementation = "eager"
        self.mert = HubertModel(hub_cfg).eval()
        self.mert.load_state_dict(
            torch.load(bundle / "mert" / "pytorch_model.bin", weights_only=True), strict=True
        )
        self.fe = Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=SR,
            padding_value=0.0,
            return_attention_mask=True,
            do_normalize=True,
        )
        sd = torch.load(bundle / "clamp3" / clamp3_filename, weights_only=True)["model"]

        def sub(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}

        a_hidden = sd["audio_model.embeddings.position_embeddings.weight"].shape[1]
        a_layers = 1 + max(
            int(k.split(".")[3]) for k in sd if k.startswith("audio_model.encoder.layer.")
        )
        audio_cfg = BertConfig(
            vocab_size=1,
            hidden_size=a_hidden,
            num_hidden_layers=a_layers,
            num_attention_heads=a_hidden // 64,
            intermediate_size=a_hidden * 4,
            max_position_embeddings=128,
        )
        audio_cfg._attn_implementation = "eager"
        self.audio_model = BertModel(audio_cfg).eval()
        self.audio_model.load_state_dict(sub("audio_model."), strict=True)
        w = sd["audio_proj.weight"]
        self.audio_proj = torch.nn.Linear(w.shape[1], w.shape[0]).eval()
        self.audio_proj.load_state_dict(sub("audio_proj."), strict=True)

        text_cfg = XLMRobertaConfig.from_json_file(str(bundle / "xlmr" / "config.json"))
        text_cfg._attn_implementation = "eager"
        self.text_model = XLMRobertaModel(text_cfg).eval()
        self.text_model.load_state_dict(sub("text_model."), strict=True)
        w = sd["text_proj.weight"]
        self.text_proj = torch.nn.Linear(w.shape[1], w.shape[0]).eval()
        self.text_proj.load_state_dict(sub("text_proj."), strict=True)
        self.tok = Tokenizer.from_file(str(bundle / "xlmr" / "tokenizer.json"))
        self.pad_id = text_cfg.pad_token_id
        self.hidden = a_hidden

    # -- audio ------------------------------------------------------------------------------

    @torch.no_grad()
    def mert_window_vectors(self, wav: np.ndarray, *, normalize: str = "track") -> torch.Tensor:
        wav = np.asarray(wav, np.float32)
        if wav.shape[0] < MIN_LAST:  # Timbre's policy: whole clip, padded to >= 0.1 s
            wav = np.concatenate([wav, np.zeros(max(0, MIN_CLIP - wav.shape[0]), np.float32)])
        x = torch.from_numpy(wav)[None]
        if normalize == "track":
            x = self.fe(x, sampling_rate=SR, padding=True, return_tensors="pt").input_values[0]
        wins = [x[:, i : i + WIN] for i in range(0, x.shape[-1], WIN)]
        if len(wins) > 1 and wins[-1].shape[-1] < MIN_LAST:
            wins = wins[:-1]
        if normalize == "window":  # the wrong rule, to show the tests can tell
            wins = [self.fe(w, sampling_rate=SR, return_tensors="pt").input_values[0] for w in wins]
        vecs = []
        for w in wins:
            hs = self.mert(w, output_hidden_states=True).hidden_states
            vecs.append(torch.stack(hs).mean(-2).mean(0))
        return torch.cat(vecs, 0)

    @torch.no_grad()
    def audio_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        z = torch.zeros(1, self.hidden)
        x = torch.cat([z, feats, z], 0)
        return self._segmented(x, self._audio_segment)

    def audio_embedding(self, wav: np.ndarray, **kw: str) -> np.ndarray:
        return self.audio_from_features(self.mert_window_vectors(wav, **kw)).numpy()

    def _audio_segment(self, seg: torch.Tensor) -> torch.Tensor:
        n = seg.shape[0]
        inp = torch.cat([seg, torch.zeros(SEG - n, self.hidden)])[None]
        mask = torch.cat([torch.ones(n), torch.zeros(SEG - n)])[None]
        h = self.audio_model(inputs_embeds=inp, attention_mask=mask).last_hidden_state
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return self.audio_proj(pooled)

    # -- text -------------------------------------------------------------------------------

    @torch.no_grad()
    def text_embedding(self, text: str) -> np.ndarray:
        lines = [line for line in dict.fromkeys(text.split("\n")) if line]
        ids = torch.tensor(self.tok.encode("</s>".join(lines)).ids)
        return self._segmented(ids, self._text_segment).numpy()

    def _text_segment(self, seg: torch.Tensor) -> torch.Tensor:
        n = seg.shape[0]
        inp = torch.cat([seg, torch.full((SEG - n,), self.pad_id)])[None]
        mask = torch.cat([torch.ones(n), torch.zeros(SEG - n)])[None]
        h = self.text_model(inp, attention_mask=mask).last_hidden_state
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return self.text_proj(pooled)

    @staticmethod
    def _segmented(x: torch.Tensor, encode) -> torch.Tensor:  # type: ignore[no-untyped-def]
        n = x.shape[0]
        segs = [x[i : i + SEG] for i in range(0, n, SEG)]
        segs[-1] = x[-SEG:]
        feats = torch.cat([encode(s) for s in segs], 0)
        w = [SEG] * (n // SEG) + ([n % SEG] if n % SEG else [])
        wt = torch.tensor(w, dtype=feats.dtype)[:, None]
        return (feats * wt).sum(0) / wt.sum()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
