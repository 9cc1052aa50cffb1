import { Injectable, Module, Inject } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TOKEN_VENDOR_CLIENT, TokenVendorModule } from './index';
import type { TokenVendorClient } from '../index';

@Injectable()
class DealsApi {
  constructor(@Inject(TOKEN_VENDOR_CLIENT) readonly vendor: TokenVendorClient) {}
}

@Module({
  providers: [{ provide: 'VENDOR_URL', useValue: 'http://vendor.test' }],
  exports: ['VENDOR_URL'],
})
class SettingsModule {}

describe('TokenVendorModule', () => {
  it('forRoot provides one client to the importing module', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [TokenVendorModule.forRoot({ baseUrl: 'http://vendor.test', callerKey: 'k' })],
      providers: [DealsApi],
    }).compile();
    const sut = moduleRef.get(DealsApi);
    expect(typeof sut.vendor.getToken).toBe('function');
    expect(moduleRef.get(TOKEN_VENDOR_CLIENT)).toBe(sut.vendor);
  });

  it('forRootAsync builds the client from injected settings', async () => {
    const useFactory = jest.fn((url: string) => ({ baseUrl: url, callerKey: 'k' }));
    const moduleRef = await Test.createTestingModule({
      imports: [
        TokenVendorModule.forRootAsync({
          imports: [SettingsModule],
          inject: ['VENDOR_URL'],
          useFactory: useFactory as (...args: never[]) => { baseUrl: string; callerKey: string },
        }),
      ],
      providers: [DealsApi],
    }).compile();
    expect(useFactory).toHaveBeenCalledWith('http://vendor.test');
    expect(typeof moduleRef.get(DealsApi).vendor.fetchWithToken).toBe('function');
  });

  it('bad options stop the module from building, naming the option', async () => {
    await expect(
      Test.createTestingModule({
        imports: [
          TokenVendorModule.forRootAsync({ useFactory: () => ({ baseUrl: 'http://vendor.test' }) }),
        ],
      }).compile(),
    ).rejects.toThrow(/exactly one of callerKey, callerKeyFile, callerTokenFile/);
  });
});
