import { describe, expect, it } from 'vitest';
import { label, labelSentence } from '../../lib/text/labeler.js';
import { CHEXPERT_OBSERVATIONS, type LabelValue, type Observation } from '../../lib/text/chexpert.js';

type Expect = Partial<Record<Observation, LabelValue>>;

// Real-style sentences written by hand (MIMIC-CXR / IU X-Ray phrasing), with the labels a reader
// would give. Observations not listed must come out 'absent' (No Finding is checked separately).
const CASES: Array<[string, Expect]> = [
  ['No acute cardiopulmonary process.', {}],
  ['The lungs are clear.', { 'Lung Opacity': 'negative' }],
  ['Lungs are well expanded and clear without focal consolidation.', { 'Lung Opacity': 'negative', Consolidation: 'negative' }],
  ['There is no pleural effusion or pneumothorax.', { 'Pleural Effusion': 'negative', Pneumothorax: 'negative' }],
  ['Heart size is normal.', { Cardiomegaly: 'negative' }],
  ['The heart is mildly enlarged.', { Cardiomegaly: 'positive' }],
  ['Moderate cardiomegaly is unchanged.', { Cardiomegaly: 'positive' }],
  ['Heart size and mediastinal contours are within normal limits.', { Cardiomegaly: 'negative', 'Enlarged Cardiomediastinum': 'negative' }],
  ['Normal heart size and mediastinal contours.', { Cardiomegaly: 'negative', 'Enlarged Cardiomediastinum': 'negative' }],
  ['The cardiomediastinal silhouette is normal.', { 'Enlarged Cardiomediastinum': 'negative' }],
  ['The mediastinum is widened.', { 'Enlarged Cardiomediastinum': 'positive' }],
  ['Cardiac silhouette is not enlarged.', { Cardiomegaly: 'negative' }],
  ['Small left pleural effusion.', { 'Pleural Effusion': 'positive' }],
  ['Bilateral pleural effusions have resolved.', { 'Pleural Effusion': 'negative' }],
  ['Possible trace right pleural effusion.', { 'Pleural Effusion': 'uncertain' }],
  ['A small right pneumothorax cannot be excluded.', { Pneumothorax: 'uncertain' }],
  ['Cannot exclude a small left apical pneumothorax.', { Pneumothorax: 'uncertain' }],
  ['No evidence of pneumothorax.', { Pneumothorax: 'negative' }],
  ['Large right pneumothorax with leftward mediastinal shift.', { Pneumothorax: 'positive' }],
  ['Right lower lobe consolidation concerning for pneumonia.', { Consolidation: 'positive', Pneumonia: 'uncertain' }],
  ['Left basilar opacity, likely atelectasis.', { 'Lung Opacity': 'positive', Atelectasis: 'uncertain' }],
  ['Bibasilar opacities may represent atelectasis or pneumonia.', { 'Lung Opacity': 'positive', Atelectasis: 'uncertain', Pneumonia: 'uncertain' }],
  ['Findings are consistent with multifocal pneumonia.', { Pneumonia: 'positive' }],
  ['Mild pulmonary edema.', { Edema: 'positive' }],
  ['No pulmonary edema.', { Edema: 'negative' }],
  ['Mild pulmonary vascular congestion without frank edema.', { Edema: 'positive' }],
  ['Interval resolution of the right upper lobe pneumonia.', { Pneumonia: 'negative' }],
  ['Plate-like atelectasis at the left base.', { Atelectasis: 'positive' }],
  ['There is a 1.5 cm nodule in the right upper lobe.', { 'Lung Lesion': 'positive' }],
  ['No suspicious pulmonary nodules or masses.', { 'Lung Lesion': 'negative' }],
  ['Spiculated left upper lobe mass, suspicious for malignancy.', { 'Lung Lesion': 'positive' }],
  ['Left-sided pacemaker with leads terminating in the right atrium and right ventricle.', { 'Support Devices': 'positive' }],
  ['The endotracheal tube terminates 4 cm above the carina.', { 'Support Devices': 'positive' }],
  ['The nasogastric tube has been removed.', { 'Support Devices': 'negative' }],
  ['Right internal jugular central venous catheter tip in the distal SVC.', { 'Support Devices': 'positive' }],
  ['Healed left rib fractures.', { Fracture: 'positive' }],
  ['No acute displaced rib fracture.', { Fracture: 'negative' }],
  ['Nondisplaced fracture of the right seventh rib is suspected.', { Fracture: 'uncertain' }],
  ['Mild right apical pleural thickening.', { 'Pleural Other': 'positive' }],
  ['Blunting of the left costophrenic angle may reflect small effusion or pleural thickening.', { 'Pleural Effusion': 'uncertain', 'Pleural Other': 'uncertain' }],
  ['The costophrenic angles are sharp.', { 'Pleural Effusion': 'negative' }],
  ['No change in moderate left pleural effusion.', { 'Pleural Effusion': 'positive' }],
  ['There is no focal consolidation, pleural effusion, or pneumothorax.', { Consolidation: 'negative', 'Pleural Effusion': 'negative', Pneumothorax: 'negative' }],
  ['Patchy opacity in the right lower lobe, which could reflect aspiration or infection.', { 'Lung Opacity': 'positive', Pneumonia: 'uncertain' }],
  ['Lungs are clear of consolidation or edema.', { 'Lung Opacity': 'negative', Consolidation: 'negative', Edema: 'negative' }],
  ['Free of focal airspace disease.', { 'Lung Opacity': 'negative' }],
  ['Negative for pneumonia.', { Pneumonia: 'negative' }],
  ['Pneumothorax is no longer visualized.', { Pneumothorax: 'negative' }],
  ['Enlarged cardiac silhouette with small bilateral effusions, but no pneumothorax.', { Cardiomegaly: 'positive', 'Pleural Effusion': 'positive', Pneumothorax: 'negative' }],
  ['Borderline heart size.', { Cardiomegaly: 'uncertain' }],
  ['Retrocardiac opacity, atelectasis versus consolidation.', { 'Lung Opacity': 'positive', Atelectasis: 'uncertain', Consolidation: 'uncertain' }],
  ['Probable small left lower lobe pneumonia.', { Pneumonia: 'uncertain' }],
  ['Sternotomy wires are intact.', { 'Support Devices': 'positive' }],
  ['No pericardial effusion is seen.', {}],
  ['Kerley B lines are present, consistent with interstitial edema.', { Edema: 'positive' }],
  ['Opacity at the right base is concerning for aspiration or pneumonia.', { 'Lung Opacity': 'positive', Pneumonia: 'uncertain' }],
  ['Right basilar opacity is likely atelectasis.', { 'Lung Opacity': 'positive', Atelectasis: 'uncertain' }],
  ['Pneumonia is not excluded.', { Pneumonia: 'uncertain' }],
  ['No new consolidation.', { Consolidation: 'negative' }],
  ['Interval removal of the endotracheal tube.', { 'Support Devices': 'negative' }],
  ['Left lower lobe collapse.', { Atelectasis: 'positive' }],
  ['Persistent small bilateral pleural effusions with adjacent atelectasis.', { 'Pleural Effusion': 'positive', Atelectasis: 'positive' }],
  ['Unchanged position of the left chest tube; the tiny apical pneumothorax has resolved.', { 'Support Devices': 'positive', Pneumothorax: 'negative' }],
  ['Minimal patchy opacity in the left lower lobe may represent atelectasis, although pneumonia cannot be excluded.', { 'Lung Opacity': 'positive', Atelectasis: 'uncertain', Pneumonia: 'uncertain' }],
  ['The right lung is clear; there is a small left effusion.', { 'Lung Opacity': 'negative', 'Pleural Effusion': 'positive' }],
];

describe('labeler on hand-written real-style sentences', () => {
  it('has at least 40 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(40));
  for (const [text, expected] of CASES) {
    it(text, () => {
      const got = label(text);
      for (const o of CHEXPERT_OBSERVATIONS) {
        if (o === 'No Finding') continue;
        const want = expected[o] ?? 'absent';
        expect({ o, v: got[o], mentions: labelSentence(text.toLowerCase()) }).toMatchObject({ o, v: want });
      }
    });
  }
});

describe('No Finding', () => {
  it('is positive when no pathology is positive or uncertain, support devices allowed', () => {
    expect(label('No pleural effusion or pneumothorax. Heart size is normal.')['No Finding']).toBe('positive');
    expect(label('Endotracheal tube in standard position. Lungs are clear.')['No Finding']).toBe('positive');
    expect(label('Possible small effusion.')['No Finding']).toBe('absent');
    expect(label('Small effusion.')['No Finding']).toBe('absent');
  });
  it('handles empty and odd text without throwing', () => {
    expect(label('')['No Finding']).toBe('positive');
    expect(label('...;;; ??')['Pneumothorax']).toBe('absent');
    expect(() => label(42 as unknown as string)).toThrow(/expected a string/);
  });
  it('aggregates positive > uncertain > negative over sentences', () => {
    const l = label('No effusion on the right. Small left pleural effusion. Possible effusion.');
    expect(l['Pleural Effusion']).toBe('positive');
  });
});
