// Drive a running fewsmap with Deltares' own FEWS WMS-T client library and print what it got.
//
//   node fews_client.mjs http://127.0.0.1:8080/FewsWebServices/wms
//
// Prints one JSON object on stdout: every response as the library returned it (already parsed
// as the library's GetCapabilitiesResponse / GetLegendGraphicResponse types), the URLs the
// library sent, and the error message of a request the service must refuse.
// tests/clients/test_fews_client.py runs this and checks the typed fields.
import { WMSProvider } from '@deltares/fews-wms-requests'

const baseUrl = process.argv[2]
if (!baseUrl) {
  console.error('usage: node fews_client.mjs <base url of the wms endpoint>')
  process.exit(2)
}

const sent = []
const provider = new WMSProvider(baseUrl, {
  transformRequestFn: async (request) => {
    sent.push(request.url)
    return request
  },
})

async function refused(promise) {
  try {
    await promise
    return null
  } catch (error) {
    return { message: error.message, status: error.cause?.status ?? null }
  }
}

const result = {
  capabilities: await provider.getCapabilities({}),
  headers: await provider.getCapabilities({ onlyHeaders: true }),
  forecasts: await provider.getCapabilities({
    layers: 'marfc-fmat.t',
    startForecastTime: '2022-06-01T00:00:00Z',
    endForecastTime: '2022-06-01T18:00:00Z',
    forecastCount: 2,
  }),
  legend: await provider.getLegendGraphic({ layers: 'marfc-fmat.t', format: 'application/json' }),
  legendRange: await provider.getLegendGraphic({
    layers: 'naefs-mean.QTF',
    format: 'application/json',
    style: 'temperature',
    colorscalerange: '-10,30',
  }),
  unknownLayer: await refused(
    provider.getLegendGraphic({ layers: 'no-such-layer', format: 'application/json' }),
  ),
}
result.sent = sent
console.log(JSON.stringify(result))
